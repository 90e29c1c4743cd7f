// Package api is the wire format of the studio's REST API: the request and
// response bodies that the server (package studio) answers with and the Go
// client (package studio/client) sends. It imports neither Fiber nor the
// queue, so a client pulls in nothing of the server.
package api

import (
	"encoding/json"
	"time"
)

// GenerationRequest is the body of POST /v1/generations: a prompt for a
// text model (AttnGAN) or a class for a class model (CVAE-GAN).
type GenerationRequest struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt,omitempty"`
	Class  string `json:"class,omitempty"`
	// N is the number of images (default 1).
	N *int `json:"n,omitempty"`
	// Seed of the first image; image k uses Seed+k. Absent: a random seed,
	// reported in the job.
	Seed *uint64 `json:"seed,omitempty"`
	// MinFidelity in [0,1]: images scoring below it are made again with new
	// seeds, up to MaxAttempts tries each.
	MinFidelity *float64 `json:"min_fidelity,omitempty"`
	MaxAttempts *int     `json:"max_attempts,omitempty"`
	// IdempotencyKey may also come as the Idempotency-Key header.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// MorphRequest is the JSON form of POST /v1/morphs (the multipart form has
// the same fields, with the image as a file part).
type MorphRequest struct {
	Model string `json:"model"`
	// Class is the target class the image is re-drawn as.
	Class string `json:"class"`
	// Image is a PNG or JPEG (base64 in JSON).
	Image          []byte `json:"image"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// InterpolationRequest is the body of POST /v1/interpolations.
type InterpolationRequest struct {
	Model string    `json:"model"`
	From  *Endpoint `json:"from"`
	To    *Endpoint `json:"to"`
	// N is the number of steps, both ends included (default 8).
	N              *int   `json:"n,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// Endpoint is one end of an interpolation.
type Endpoint struct {
	Class string  `json:"class"`
	Seed  *uint64 `json:"seed,omitempty"`
}

// Job is a generation job as GET /v1/generations/{id} shows it.
type Job struct {
	ID              string    `json:"id"`
	Kind            string    `json:"kind"`
	Model           string    `json:"model"`
	State           string    `json:"state"`
	Progress        Progress  `json:"progress"`
	Request         Request   `json:"request"`
	Error           string    `json:"error,omitempty"`
	CancelRequested bool      `json:"cancel_requested,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	StartedAt       time.Time `json:"started_at,omitzero"`
	FinishedAt      time.Time `json:"finished_at,omitzero"`
	Images          []Image   `json:"images"`
	Links           JobLinks  `json:"links"`
}

// Finished reports whether the job will change no more.
func (j Job) Finished() bool {
	return j.State == "succeeded" || j.State == "failed" || j.State == "cancelled"
}

// Progress counts finished images.
type Progress struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

// Request echoes what the job asks for (an uploaded image is not echoed).
type Request struct {
	Prompt      string       `json:"prompt,omitempty"`
	Class       string       `json:"class,omitempty"`
	N           int          `json:"n"`
	Seed        uint64       `json:"seed"`
	MinFidelity float64      `json:"min_fidelity,omitempty"`
	MaxAttempts int          `json:"max_attempts,omitempty"`
	From        *JobEndpoint `json:"from,omitempty"`
	To          *JobEndpoint `json:"to,omitempty"`
}

// JobEndpoint is an interpolation end as the job records it.
type JobEndpoint struct {
	Class string `json:"class"`
	Seed  uint64 `json:"seed"`
}

// JobLinks are the job's resources.
type JobLinks struct {
	Self   string `json:"self"`
	Events string `json:"events"`
}

// Image is one finished image of a job with its scores.
type Image struct {
	Index    int     `json:"index"`
	Seed     uint64  `json:"seed"`
	Size     int     `json:"size"`
	Attempts int     `json:"attempts"`
	Fidelity float64 `json:"fidelity"`
	// FidelityMeasure says what Fidelity is: class_probability,
	// attribute_agreement or damsm_similarity (generator.Fidelity*);
	// empty when the image could not be scored.
	FidelityMeasure string `json:"fidelity_measure,omitempty"`
	BelowMin        bool   `json:"below_min,omitempty"`
	// Scores is the fidelity scorer's report (generator.Scores: each
	// measure by name, class rank, top classes, the attributes seen and
	// the per-group attribute_groups detail).
	Scores json.RawMessage `json:"scores,omitempty"`
	// Words are the prompt words that have an attention map (AttnGAN).
	Words []string   `json:"words,omitempty"`
	Links ImageLinks `json:"links"`
}

// ImageLinks are an image's resources.
type ImageLinks struct {
	PNG       string `json:"png"`
	Attention string `json:"attention,omitempty"`
}

// Attention lists the word attention maps of one image: one per kept
// word of the prompt for each attentional stage, the finest stage first.
type Attention struct {
	Index int `json:"index"`
	// Stages is the number of attentional stages (1 for a 64-px AttnGAN).
	Stages int       `json:"stages"`
	Maps   []WordMap `json:"maps"`
}

// WordMap is the attention to one word, as a grayscale PNG at PNG,
// normalised to its own maximum. Peak is that maximum: the largest share
// of an image region's attention the word got (0–1, the softmax over the
// words), so maps compare on one scale; absent when the model did not say.
// Stage is the attentional stage, from the coarsest (0); Position the
// word's place among the stage's words.
type WordMap struct {
	Position int      `json:"position"`
	Word     string   `json:"word"`
	Stage    int      `json:"stage"`
	Peak     *float64 `json:"peak,omitempty"`
	PNG      string   `json:"png"`
}

// Event is the data of one server-sent event of GET …/events; the SSE
// event name is Type.
type Event struct {
	Type  string `json:"type"`
	JobID string `json:"job_id"`
	State string `json:"state"`
	Done  int    `json:"done"`
	Total int    `json:"total"`
	// Index and PNG are set for "image" events, and Image too when the
	// server could read the stored image's metadata: the same object as
	// in Job.Images (seed, fidelity and its measure, scores, links).
	Index *int      `json:"index,omitempty"`
	PNG   string    `json:"png,omitempty"`
	Image *Image    `json:"image,omitempty"`
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
}

// SSE event types, in the order a job goes through them.
const (
	EventQueued   = "queued"
	EventStarted  = "started"
	EventImage    = "image"
	EventProgress = "progress"
	EventRetrying = "retrying"
	EventFinished = "finished"
)

// JobList is GET /v1/jobs: the caller's unfinished jobs (queued or
// running), oldest first, of every kind its key's scopes reach.
type JobList struct {
	Jobs []JobSummary `json:"jobs"`
}

// JobSummary is one job of the list: enough to show a queue, with the
// links to follow or cancel it (DELETE on Self).
type JobSummary struct {
	ID string `json:"id"`
	// Kind is generate, morph, interpolate or dataset.
	Kind  string `json:"kind"`
	Model string `json:"model"`
	// Lane is interactive (generations, morphs, interpolations) or batch
	// (data sets).
	Lane     string   `json:"lane"`
	State    string   `json:"state"`
	Progress Progress `json:"progress"`
	// Prompt or Class says what a generation asks for; From and To are an
	// interpolation's ends; a data set names its classes in Classes.
	Prompt          string       `json:"prompt,omitempty"`
	Class           string       `json:"class,omitempty"`
	N               int          `json:"n,omitempty"`
	Seed            uint64       `json:"seed,omitempty"`
	From            *JobEndpoint `json:"from,omitempty"`
	To              *JobEndpoint `json:"to,omitempty"`
	Classes         []string     `json:"classes,omitempty"`
	CancelRequested bool         `json:"cancel_requested,omitempty"`
	CreatedAt       time.Time    `json:"created_at"`
	StartedAt       time.Time    `json:"started_at,omitzero"`
	Links           JobLinks     `json:"links"`
}
