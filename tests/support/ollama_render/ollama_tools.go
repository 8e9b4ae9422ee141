// How Ollama finds tool calls in a model's output when it renders with a Go template: the code of
// ollama/ollama at fb30760 (v0.33.0-rc2; unchanged since v0.30.0), MIT licence, ported to the Go
// this repository's tests run with (1.19: no `min` builtin, no `slices` package) and to local types
// in place of its api package. Nothing else is changed:
//   - tools/template.go: parseTag, findToolCallNode, findTextNode (the tag is the first text inside
//     the first {{if ...ToolCalls}}; an action before it makes the tag "{")
//   - tools/tools.go: Parser.Add, findTag, parseToolCall, findTool, findArguments, done
//   - llm/llama_server.go: llamaServerPreservedTokensForToolTag, leadingSpecialTokenCandidate (the
//     special tokens llama-server renders as text: only the tag's, and none for a "{" tag)

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"text/template"
	"text/template/parse"
)

type DetectedCall struct {
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
	Index     int            `json:"index"`
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// ---------------------------------------------------------------- tools/template.go

func parseTag(tmpl *template.Template) string {
	if tmpl == nil || tmpl.Tree == nil {
		return "{"
	}
	tc := findToolCallNode(tmpl.Tree.Root.Nodes)
	if tc == nil {
		return "{"
	}
	tn := findTextNode(tc.List.Nodes)
	if tn == nil {
		return "{"
	}
	tag := string(tn.Text)
	tag = strings.ReplaceAll(tag, "\r\n", "\n")
	tag, _, _ = strings.Cut(tag, "{")
	tag = strings.TrimSpace(tag)
	if tag == "" {
		tag = "{"
	}
	return tag
}

func findToolCallNode(nodes []parse.Node) *parse.IfNode {
	isToolCallsNode := func(n *parse.IfNode) bool {
		for _, cmd := range n.Pipe.Cmds {
			for _, arg := range cmd.Args {
				if field, ok := arg.(*parse.FieldNode); ok {
					for _, ident := range field.Ident {
						if ident == "ToolCalls" {
							return true
						}
					}
				}
			}
		}
		return false
	}
	for _, node := range nodes {
		switch n := node.(type) {
		case *parse.IfNode:
			if isToolCallsNode(n) {
				return n
			}
			if result := findToolCallNode(n.List.Nodes); result != nil {
				return result
			}
			if n.ElseList != nil {
				if result := findToolCallNode(n.ElseList.Nodes); result != nil {
					return result
				}
			}
		case *parse.ListNode:
			if result := findToolCallNode(n.Nodes); result != nil {
				return result
			}
		case *parse.RangeNode:
			if result := findToolCallNode(n.List.Nodes); result != nil {
				return result
			}
			if n.ElseList != nil {
				if result := findToolCallNode(n.ElseList.Nodes); result != nil {
					return result
				}
			}
		case *parse.WithNode:
			if result := findToolCallNode(n.List.Nodes); result != nil {
				return result
			}
			if n.ElseList != nil {
				if result := findToolCallNode(n.ElseList.Nodes); result != nil {
					return result
				}
			}
		}
	}
	return nil
}

func findTextNode(nodes []parse.Node) *parse.TextNode {
	for _, node := range nodes {
		switch n := node.(type) {
		case *parse.TextNode:
			if len(bytes.TrimSpace(n.Text)) == 0 {
				continue
			}
			return n
		case *parse.IfNode:
			if text := findTextNode(n.List.Nodes); text != nil {
				return text
			}
			if n.ElseList != nil {
				if text := findTextNode(n.ElseList.Nodes); text != nil {
					return text
				}
			}
			return nil
		case *parse.ListNode:
			if text := findTextNode(n.Nodes); text != nil {
				return text
			}
		case *parse.RangeNode:
			if text := findTextNode(n.List.Nodes); text != nil {
				return text
			}
			if n.ElseList != nil {
				if text := findTextNode(n.ElseList.Nodes); text != nil {
					return text
				}
			}
			return nil
		case *parse.WithNode:
			if text := findTextNode(n.List.Nodes); text != nil {
				return text
			}
			if n.ElseList != nil {
				if text := findTextNode(n.ElseList.Nodes); text != nil {
					return text
				}
			}
			return nil
		case *parse.ActionNode:
			return nil
		}
	}
	return nil
}

// ---------------------------------------------------------------- tools/tools.go

type toolsState int

const (
	toolsState_LookingForTag toolsState = iota
	toolsState_ToolCalling
	toolsState_Done
)

type Parser struct {
	tag    string
	tools  []Tool
	state  toolsState
	buffer []byte
	n      int
}

func (p *Parser) Add(s string) (calls []DetectedCall, content string) {
	if p.state == toolsState_Done {
		return nil, s
	}
	p.buffer = append(p.buffer, s...)
	if p.state == toolsState_LookingForTag {
		i, found := p.findTag()
		if i == -1 {
			content = string(p.buffer)
			p.buffer = []byte{}
		} else {
			content = string(p.buffer[:i])
			p.buffer = p.buffer[i:]
		}
		if p.tag == "{" || p.tag == "[" {
			if strings.TrimSpace(content) != "" {
				p.state = toolsState_Done
				return nil, content + string(p.buffer)
			}
		}
		if !found {
			return nil, content
		}
		p.state = toolsState_ToolCalling
	}
	for {
		call := p.parseToolCall()
		if call == nil {
			break
		}
		calls = append(calls, *call)
	}
	if p.done() {
		p.state = toolsState_Done
		content = string(p.buffer)
		p.buffer = []byte{}
	}
	return calls, content
}

func (p *Parser) findTag() (int, bool) {
	if i := bytes.Index(p.buffer, []byte(p.tag)); i > -1 {
		return i, true
	}
	max := minInt(len(p.buffer), len(p.tag))
	for i := max; i > 0; i-- {
		if bytes.HasSuffix(p.buffer, []byte(p.tag[:i])) {
			return len(p.buffer) - i, false
		}
	}
	return -1, false
}

func (p *Parser) parseToolCall() *DetectedCall {
	tool, end := findTool(p.tools, p.buffer)
	if tool == nil {
		return nil
	}
	var argsMap map[string]any
	if found, i := findArguments(tool, p.buffer); found == nil {
		return nil
	} else {
		argsMap = found
		if i > end {
			end = i
		}
	}
	tc := &DetectedCall{Name: tool.Function.Name, Arguments: argsMap, Index: p.n}
	p.n++
	p.buffer = p.buffer[end:]
	return tc
}

func findTool(tools []Tool, buf []byte) (*Tool, int) {
	if len(buf) == 0 {
		return nil, 0
	}
	var longest string
	for _, t := range tools {
		if len(t.Function.Name) > len(longest) {
			longest = t.Function.Name
		}
	}
	for i := 1; i <= minInt(len(buf), len(longest)); i++ {
		tail := buf[len(buf)-i:]
		for _, t := range tools {
			name := []byte(t.Function.Name)
			if len(tail) < len(name) && bytes.HasPrefix(name, tail) {
				return nil, 0
			}
		}
	}
	var found *Tool
	start := -1
	end := -1
	for i := range tools {
		name := []byte(tools[i].Function.Name)
		pos := bytes.Index(buf, name)
		if pos == -1 {
			continue
		}
		if start != -1 {
			if pos > start {
				continue
			}
			if pos == start && len(name) <= len(found.Function.Name) {
				continue
			}
		}
		found = &tools[i]
		start = pos
		end = pos + len(name)
	}
	if found != nil {
		return found, end
	}
	return nil, 0
}

func findArguments(tool *Tool, buffer []byte) (map[string]any, int) {
	if len(buffer) == 0 {
		return nil, 0
	}
	start := -1
	var braces int
	var inString, escaped bool
	for i := range buffer {
		c := buffer[i]
		if escaped {
			escaped = false
			continue
		}
		if c == '\\' {
			escaped = true
			continue
		}
		if c == '"' {
			inString = !inString
			continue
		}
		if inString {
			continue
		}
		if c == '{' {
			if braces == 0 {
				start = i
			}
			braces++
		} else if c == '}' {
			braces--
			if braces == 0 && start != -1 {
				object := buffer[start : i+1]
				var data map[string]any
				if err := json.Unmarshal(object, &data); err != nil {
					start = -1
					continue
				}
				var findObject func(obj map[string]any) (map[string]any, bool)
				findObject = func(obj map[string]any) (map[string]any, bool) {
					findMap := func(name string, obj map[string]any) (map[string]any, bool) {
						if args, ok := obj[name].(map[string]any); ok {
							return args, true
						}
						if argsStr, ok := obj[name].(string); ok {
							var argsData map[string]interface{}
							if err := json.Unmarshal([]byte(argsStr), &argsData); err == nil {
								return argsData, ok
							}
						}
						return nil, false
					}
					if _, hasName := obj["name"]; hasName {
						if args, ok := findMap("arguments", obj); ok {
							return args, true
						}
						if args, ok := findMap("parameters", obj); ok {
							return args, true
						}
						return nil, true
					}
					if args, ok := findMap(tool.Function.Name, obj); ok {
						return args, true
					}
					for _, v := range obj {
						switch child := v.(type) {
						case map[string]any:
							if result, found := findObject(child); found {
								return result, true
							}
						case []any:
							for _, item := range child {
								if childObj, ok := item.(map[string]any); ok {
									if result, found := findObject(childObj); found {
										return result, true
									}
								}
							}
						}
					}
					return nil, false
				}
				if args, found := findObject(data); found {
					return args, i
				}
				return data, i
			}
			if braces < 0 {
				braces = 0
			}
		}
	}
	return nil, 0
}

func (p *Parser) done() bool {
	var open, close rune
	switch p.tag {
	case "{":
		open, close = '{', '}'
	case "[":
		open, close = '[', ']'
	default:
		return false
	}
	var count int
	var inString, escaped bool
	for _, c := range p.buffer {
		if escaped {
			escaped = false
			continue
		}
		if c == '\\' {
			escaped = true
			continue
		}
		if c == '"' {
			inString = !inString
			continue
		}
		if inString {
			continue
		}
		if c == byte(open) {
			count++
		} else if c == byte(close) {
			count--
			if count == 0 {
				return true
			}
		}
	}
	return false
}

func (p *Parser) Content() string {
	if p.n > 0 {
		return ""
	}
	if p.tag == "{" || p.tag == "[" {
		return string(p.buffer)
	}
	return ""
}

// ---------------------------------------------------------------- llm/llama_server.go

func llamaServerPreservedTokensForToolTag(tag string) []string {
	if tag == "" || tag == "{" || tag == "[" {
		return nil
	}
	if token := leadingSpecialTokenCandidate(tag); token != "" {
		return []string{token}
	}
	return []string{tag}
}

func leadingSpecialTokenCandidate(tag string) string {
	if len(tag) == 0 {
		return ""
	}
	var close byte
	switch tag[0] {
	case '[':
		close = ']'
	case '<':
		close = '>'
	default:
		return ""
	}
	end := strings.IndexByte(tag, close)
	if end <= 0 {
		return ""
	}
	return tag[:end+1]
}
