package studio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/fgstudio/fgstudio/studio/api"
)

// mediaType parses the request's Content-Type; only UTF-8 is accepted
// as a charset.
func mediaType(c *fiber.Ctx) (string, map[string]string, error) {
	ct := c.Get(fiber.HeaderContentType)
	if ct == "" {
		return "", nil, problem(fiber.StatusUnsupportedMediaType, api.TypeMediaType, "Content-Type",
			"Content-Type is missing; send application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", nil, problem(fiber.StatusUnsupportedMediaType, api.TypeMediaType, "Content-Type",
			"Content-Type %q cannot be parsed", clip(ct, 100))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", nil, problem(fiber.StatusUnsupportedMediaType, api.TypeMediaType, "Content-Type",
			"charset %q is not accepted; send UTF-8", clip(cs, 40))
	}
	return mt, params, nil
}

// decodeJSONBody checks that the request is application/json and decodes
// it strictly into dst.
func decodeJSONBody(c *fiber.Ctx, dst any) error {
	mt, _, err := mediaType(c)
	if err != nil {
		return err
	}
	if mt != fiber.MIMEApplicationJSON {
		return problem(fiber.StatusUnsupportedMediaType, api.TypeMediaType, "Content-Type",
			"Content-Type %s is not accepted here; send application/json", clip(mt, 100))
	}
	return decodeJSON(c.Body(), dst)
}

// decodeJSON decodes exactly one JSON object into dst: unknown fields,
// wrong types, trailing data and invalid UTF-8 are refused with a problem
// that names the field.
func decodeJSON(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return problem(fiber.StatusBadRequest, api.TypeMalformed, "", "the request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(body, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem(fiber.StatusBadRequest, api.TypeMalformed, "", "the body holds more than one JSON value")
	}
	if !utf8.Valid(body) {
		// Invalid bytes can only be inside strings (elsewhere they are a
		// syntax error); the decoder replaced them with U+FFFD.
		return problem(fiber.StatusBadRequest, api.TypeMalformed, fieldWithRune(reflect.ValueOf(dst), "", utf8.RuneError),
			"the body is not valid UTF-8")
	}
	return nil
}

func jsonProblem(body []byte, err error) *Problem {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return problem(fiber.StatusBadRequest, api.TypeMalformed, "", "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem(fiber.StatusBadRequest, api.TypeMalformed, "", "the JSON body ends early (%d bytes)", len(body))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return problem(fiber.StatusBadRequest, api.TypeMalformed, "", "the body must be a JSON object, not %s", typ.Value)
		}
		return problem(fiber.StatusBadRequest, api.TypeMalformed, typ.Field, "%s must be %s, not %s", typ.Field, jsonTypeName(typ.Type), typ.Value)
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return problem(fiber.StatusBadRequest, api.TypeMalformed, clip(name, 100), "unknown field %q", clip(name, 100))
	}
	if strings.Contains(msg, "illegal base64") {
		return problem(fiber.StatusBadRequest, api.TypeMalformed, "image", "image must be base64 (standard alphabet, padded)")
	}
	return problem(fiber.StatusBadRequest, api.TypeMalformed, "", "malformed JSON: %s", clip(msg, 200))
}

// jsonTypeName describes a Go type in JSON words.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Uint64, reflect.Uint, reflect.Uint32:
		// Only seeds are unsigned: 0 … 2^53−1 (jobspec.MaxSeed).
		return "a whole number from 0 to 9007199254740991"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// fieldWithRune finds the JSON name of the first string field of v that
// contains r ("" if none).
func fieldWithRune(v reflect.Value, path string, r rune) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		if strings.ContainsRune(v.String(), r) {
			return path
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if f.Anonymous {
				name = ""
			}
			sub := name
			if path != "" && name != "" {
				sub = path + "." + name
			} else if name == "" {
				sub = path
			}
			if got := fieldWithRune(v.Field(i), sub, r); got != "" {
				return got
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			for i := 0; i < v.Len(); i++ {
				if strings.ContainsRune(v.Index(i).String(), r) {
					return fmt.Sprintf("%s[%d]", path, i)
				}
			}
		}
	}
	return ""
}
