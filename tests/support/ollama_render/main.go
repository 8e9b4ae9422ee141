// Renders a Go template with data shaped like Ollama's template values (api.Message, api.Tool),
// so tests can check cc-capture's Ollama template against the training template.
// Usage: go run . TEMPLATE < {"messages": [...], "tools": [...]}
package main

import (
	"encoding/json"
	"fmt"
	"os"
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

func main() {
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
