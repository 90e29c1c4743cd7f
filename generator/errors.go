package generator

import "errors"

// Request errors: the request cannot be served as asked. Wrapped errors
// name the field at fault.
var (
	ErrUnknownModel = errors.New("unknown model")
	ErrUnknownClass = errors.New("unknown class")
	ErrUnseenClass  = errors.New("class not in the model's training set")
	ErrEmptyPrompt  = errors.New("prompt is empty")
	ErrNoKnownWord  = errors.New("prompt has no word the model knows")
	ErrTooMany      = errors.New("too many images")
	ErrBadImage     = errors.New("unusable image")
	ErrWrongKind    = errors.New("operation not supported by this model")
	ErrBadRequest   = errors.New("bad request")
)

// FieldError is a request error with the request field it concerns.
type FieldError struct {
	Field string
	Err   error
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Msg == "" {
		return e.Field + ": " + e.Err.Error()
	}
	return e.Field + ": " + e.Msg
}

func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, err error, msg string) error {
	return &FieldError{Field: field, Err: err, Msg: msg}
}
