package handlers

import (
	"encoding/json"

	"github.com/labstack/echo/v4"
)

// compactJSON is the one JSON encoder of both listeners: it writes a body
// that ends with its closing brace, without the newline json.Encoder adds.
// The iOS app reads an error body only if its text starts with "{" and ends
// with "}" (SPEC §0).
type compactJSON struct {
	echo.DefaultJSONSerializer // Deserialize
}

// Serialize writes i as JSON, indented when indent is not empty.
func (compactJSON) Serialize(c echo.Context, i any, indent string) error {
	var b []byte
	var err error
	if indent != "" {
		b, err = json.MarshalIndent(i, "", indent)
	} else {
		b, err = json.Marshal(i)
	}
	if err != nil {
		return err
	}
	_, err = c.Response().Write(b)
	return err
}
