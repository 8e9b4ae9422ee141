// Renders a Go template with data shaped like Ollama's template values (api.Message, api.Tool),
// so tests can check cc-capture's Ollama template against the training template; and finds tool
// calls in a model's output as Ollama does with that template (tool_calls.go).
// Usage: go run . TEMPLATE < {"messages": [...], "tools": [...]}
//        go run . detect TEMPLATE < {"output": "...", "special": ["<|python_tag|>"], "tools": [...]}
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
)

// As in Ollama's api package: arguments and property types print as JSON.
type ToolCallFunctionArguments map[string]any

func (a ToolCallFunctionArguments) String() string {
	b, _ := json.Marshal(map[string]any(a))
	return string(b)
}

type PropertyType []string

func (t *PropertyType) UnmarshalJSON(data []byte) error {
	var one string
	if json.Unmarshal(data, &one) == nil {
		*t = PropertyType{one}
		return nil
	}
	var many []string
	err := json.Unmarshal(data, &many)
	*t = many
	return err
}

func (t PropertyType) String() string {
	if len(t) == 1 {
		return t[0]
	}
	b, _ := json.Marshal([]string(t))
	return string(b)
}

type ToolCall struct {
	Function struct {
		Index     int                       `json:"index"`
		Name      string                    `json:"name"`
		Arguments ToolCallFunctionArguments `json:"arguments"`
	} `json:"function"`
}

type Message struct {
	Role      string     `json:"role"`
	Content   string     `json:"content"`
	ToolCalls []ToolCall `json:"tool_calls"`
	ToolName  string     `json:"tool_name"`
}

type ToolProperty struct {
	Type        PropertyType `json:"type"`
	Description string       `json:"description"`
}

type Tool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Parameters  struct {
			Type       string                  `json:"type"`
			Required   []string                `json:"required"`
			Properties map[string]ToolProperty `json:"properties"`
		} `json:"parameters"`
	} `json:"function"`
}

type Values struct {
	Messages []Message `json:"messages"`
	Tools    []Tool    `json:"tools"`
}

// What Ollama makes of a model's output: the tag it derives from the template, the special tokens
// llama-server renders as text (the others are dropped from the output), and the calls and content
// its parser returns when the output streams in (3 bytes at a time, a preserved token whole), with
// routes.go's rule that a chunk giving content sends only the content.
type Detection struct {
	Tag       string         `json:"tag"`
	Preserved []string       `json:"preserved"`
	Seen      string         `json:"seen"`
	Calls     []DetectedCall `json:"calls"`
	Content   string         `json:"content"`
}

func detect(path string) {
	tmpl, err := template.ParseFiles(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var in struct {
		Output  string   `json:"output"`
		Special []string `json:"special"`
		Tools   []Tool   `json:"tools"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	d := Detection{Tag: toolCallsTag(tmpl), Calls: []DetectedCall{}}
	d.Preserved = preservedTokens(d.Tag)
	d.Seen = in.Output
	for _, token := range in.Special {
		kept := false
		for _, p := range d.Preserved {
			kept = kept || p == token
		}
		if !kept {
			d.Seen = strings.ReplaceAll(d.Seen, token, "")
		}
	}
	p := &callParser{tag: d.Tag, tools: in.Tools}
	rest, sentNothing := d.Seen, false
	for len(rest) > 0 {
		n := 3
		if n > len(rest) {
			n = len(rest)
		}
		for _, token := range d.Preserved {
			if i := strings.Index(rest, token); i == 0 {
				n = len(token)
			} else if i > 0 && i < n {
				n = i
			}
		}
		calls, content := p.Add(rest[:n])
		rest = rest[n:]
		sentNothing = false
		if len(content) > 0 {
			d.Content += content
		} else if len(calls) > 0 {
			d.Calls = append(d.Calls, calls...)
		} else {
			sentNothing = true
		}
	}
	if sentNothing {
		d.Content += p.Content()
	}
	out, _ := json.Marshal(d)
	fmt.Println(string(out))
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "detect" {
		detect(os.Args[2])
		return
	}
	tmpl, err := template.ParseFiles(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var v Values
	if err := json.NewDecoder(os.Stdin).Decode(&v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := tmpl.Execute(os.Stdout, v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
