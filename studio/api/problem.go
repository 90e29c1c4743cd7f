package api

// Problem is an RFC 9457 problem document. Type is stable and documented
// (TypeBase + a slug below); Detail is for people; Field names the request
// field (or header) at fault, if any.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

func (p *Problem) Error() string {
	if p.Field != "" {
		return p.Field + ": " + p.Detail
	}
	return p.Detail
}

// Slug is the last part of Type, e.g. "invalid-field".
func (p Problem) Slug() string {
	if len(p.Type) > len(TypeBase) && p.Type[:len(TypeBase)] == TypeBase {
		return p.Type[len(TypeBase):]
	}
	return p.Type
}

// TypeBase prefixes every problem type.
const TypeBase = "https://fgstudio.dev/problems/"

// Problem types (the slug after TypeBase).
const (
	TypeMalformed        = "malformed-body"         // 400: not JSON, not a form, wrong JSON type, unknown field
	TypeInvalidField     = "invalid-field"          // 422: a value out of range or not allowed
	TypeUnknownModel     = "unknown-model"          // 422
	TypeUnknownClass     = "unknown-class"          // 422
	TypeUnknownWords     = "unknown-words"          // 422: the prompt has no word the model knows
	TypeInvalidImage     = "invalid-image"          // 422: not a PNG/JPEG, truncated, too small
	TypeImageTooLarge    = "image-too-large"        // 413: too many bytes or pixels
	TypeBodyTooLarge     = "body-too-large"         // 413
	TypeMediaType        = "unsupported-media-type" // 415
	TypeIdempotency      = "idempotency-key-reused" // 422: same key, other request
	TypeUnauthorized     = "unauthorized"           // 401: no key, unknown key, revoked key
	TypeForbidden        = "forbidden"              // 403: the key lacks the scope
	TypeNotFound         = "not-found"              // 404
	TypeMethodNotAllowed = "method-not-allowed"     // 405
	TypeRateLimited      = "rate-limited"           // 429: per-key request rate
	TypeQuotaExceeded    = "quota-exceeded"         // 429: per-key concurrent jobs
	TypeQueueFull        = "queue-full"             // 429: the queue holds too many jobs
	TypeConflict         = "conflict"               // 409: the resource is not in a state for this
	TypeNotImplemented   = "not-implemented"        // 501
	TypeUnavailable      = "unavailable"            // 503
	TypeInternal         = "internal"               // 500
)
