package worker

import (
	"errors"

	"github.com/fgstudio/fgstudio/contract/jobspec"
	"github.com/fgstudio/fgstudio/generator"
)

// specFields maps the generator's parameter names to the job spec's, so
// that a failure names the field the client sent.
var specFields = map[string]string{
	"steps":        "n",
	"target_class": "class",
}

// requestError reports whether err is the request's fault (it would fail
// the same way on any worker), and the spec field at fault.
func requestError(err error) (field, reason string, ok bool) {
	var fe *generator.FieldError
	if errors.As(err, &fe) {
		field = fe.Field
		if f, ok := specFields[field]; ok {
			field = f
		}
		reason = fe.Msg
		if reason == "" && fe.Err != nil {
			reason = fe.Err.Error()
		}
		return field, reason, true
	}
	var je *jobspec.FieldError
	if errors.As(err, &je) {
		return je.Field, je.Reason, true
	}
	return "", "", false
}

// requestCause is the recorded cause of a job refused before it ran:
// always a *jobspec.FieldError, "spec" when the JSON did not decode.
func requestCause(err error) error {
	if field, reason, ok := requestError(err); ok {
		return &jobspec.FieldError{Field: field, Reason: reason}
	}
	return &jobspec.FieldError{Field: "spec", Reason: err.Error()}
}
