// How Ollama finds tool calls in a model's output when it renders with a Go template, written for
// these tests from the behaviour documented in ../shared/notes/ollama-tool-calls.md (observed in
// ollama v0.33.0-rc2, unchanged since v0.30.0), not from Ollama's code:
//   - the tag is the first non-blank text inside the template's first {{if ...ToolCalls}}, cut at
//     "{" and trimmed; an action (or any other node) before that text, or no text, makes it "{";
//   - llama-server renders a special token as text only when Ollama preserves it: for a tag that is
//     not a brace, the tag's leading <...> token; every other special token is dropped;
//   - text before the tag is content; after it, each balanced JSON object naming one of the
//     request's tools is a call, its arguments from "arguments", else "parameters" (an object or a
//     JSON string); anything else after the tag is dropped;
//   - with a brace tag, calls are parsed only when the output's first non-blank byte is that brace.

package main

import (
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

// toolCallsTag is the text Ollama looks for before the calls, derived from the template's tree.
func toolCallsTag(tmpl *template.Template) string {
	if tmpl == nil || tmpl.Tree == nil {
		return "{"
	}
	block := firstToolCallsIf(tmpl.Tree.Root)
	if block == nil {
		return "{"
	}
	for _, node := range block.List.Nodes {
		text, ok := node.(*parse.TextNode)
		if !ok {
			return "{"
		}
		s := string(text.Text)
		if strings.TrimSpace(s) == "" {
			continue
		}
		if i := strings.Index(s, "{"); i >= 0 {
			s = s[:i]
		}
		if s = strings.TrimSpace(s); s == "" {
			return "{"
		}
		return s
	}
	return "{"
}

// firstToolCallsIf walks the tree in document order to the first if whose condition names ToolCalls.
func firstToolCallsIf(node parse.Node) *parse.IfNode {
	switch n := node.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, child := range n.Nodes {
			if found := firstToolCallsIf(child); found != nil {
				return found
			}
		}
	case *parse.IfNode:
		if strings.Contains(n.Pipe.String(), "ToolCalls") {
			return n
		}
		return firstInBranches(n.List, n.ElseList)
	case *parse.RangeNode:
		return firstInBranches(n.List, n.ElseList)
	case *parse.WithNode:
		return firstInBranches(n.List, n.ElseList)
	}
	return nil
}

func firstInBranches(branches ...*parse.ListNode) *parse.IfNode {
	for _, b := range branches {
		if b == nil {
			continue
		}
		if found := firstToolCallsIf(b); found != nil {
			return found
		}
	}
	return nil
}

// preservedTokens are the special tokens llama-server is asked to render as text for this tag.
func preservedTokens(tag string) []string {
	if strings.HasPrefix(tag, "<") {
		if end := strings.Index(tag, ">"); end > 0 {
			return []string{tag[:end+1]}
		}
	}
	return []string{}
}

// callParser takes the output as it streams in and returns, per chunk, the calls completed and
// the content that can no longer be part of the tag.
type callParser struct {
	tag     string
	tools   []Tool
	pending string
	calling bool // the tag was seen: everything from now on is calls
	plain   bool // a brace tag and text came first: everything is content
	count   int
}

func (p *callParser) Add(chunk string) ([]DetectedCall, string) {
	if p.plain {
		return nil, chunk
	}
	p.pending += chunk
	if !p.calling {
		if p.tag == "{" || p.tag == "[" {
			trimmed := strings.TrimLeft(p.pending, " \t\r\n")
			if trimmed == "" {
				return nil, ""
			}
			if !strings.HasPrefix(trimmed, p.tag) {
				p.plain = true
				content := p.pending
				p.pending = ""
				return nil, content
			}
			p.calling = true
			p.pending = trimmed
		} else if i := strings.Index(p.pending, p.tag); i >= 0 {
			content := p.pending[:i]
			p.pending = p.pending[i+len(p.tag):]
			p.calling = true
			return p.completedCalls(), content
		} else {
			keep := partialTagSuffix(p.pending, p.tag)
			content := p.pending[:len(p.pending)-keep]
			p.pending = p.pending[len(p.pending)-keep:]
			return nil, content
		}
	}
	return p.completedCalls(), ""
}

// Content is what is left when the output ends: held-back text that never became the tag.
func (p *callParser) Content() string {
	if p.calling {
		return ""
	}
	rest := p.pending
	p.pending = ""
	return rest
}

func (p *callParser) completedCalls() []DetectedCall {
	var calls []DetectedCall
	for {
		start := strings.Index(p.pending, "{")
		if start < 0 {
			return calls
		}
		end := balancedObjectEnd(p.pending[start:])
		if end < 0 {
			return calls // the object is still streaming in
		}
		object := p.pending[start : start+end]
		p.pending = p.pending[start+end:]
		if call, ok := p.toCall(object); ok {
			calls = append(calls, call)
		}
	}
}

func (p *callParser) toCall(object string) (DetectedCall, bool) {
	var fields map[string]any
	if json.Unmarshal([]byte(object), &fields) != nil {
		return DetectedCall{}, false
	}
	name := ""
	for _, tool := range p.tools { // the longest tool name the object mentions
		candidate := tool.Function.Name
		if strings.Contains(object, candidate) && len(candidate) > len(name) {
			name = candidate
		}
	}
	if name == "" {
		return DetectedCall{}, false
	}
	for _, key := range []string{"arguments", "parameters"} {
		switch args := fields[key].(type) {
		case map[string]any:
			return p.numbered(name, args), true
		case string:
			var decoded map[string]any
			if json.Unmarshal([]byte(args), &decoded) == nil {
				return p.numbered(name, decoded), true
			}
		}
	}
	return DetectedCall{}, false
}

func (p *callParser) numbered(name string, args map[string]any) DetectedCall {
	call := DetectedCall{Name: name, Arguments: args, Index: p.count}
	p.count++
	return call
}

// balancedObjectEnd is the length of the JSON object at the start of s, or -1 while it is open.
func balancedObjectEnd(s string) int {
	depth, inString, escaped := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}

// partialTagSuffix is how many bytes at the end of s could be the start of the tag.
func partialTagSuffix(s, tag string) int {
	for n := len(tag) - 1; n > 0; n-- {
		if n <= len(s) && strings.HasSuffix(s, tag[:n]) {
			return n
		}
	}
	return 0
}
