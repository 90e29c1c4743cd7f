package api

import (
	"encoding/json"
	"time"
)

// DatasetRequest is the body of POST /v1/datasets: the fields of
// contract/datasetspec.Spec (the CLI's `studio dataset make` flags).
type DatasetRequest struct {
	Model           string              `json:"model"`
	Classes         []string            `json:"classes,omitempty"`
	PerClass        int                 `json:"per_class"`
	MinFidelity     float64             `json:"min_fidelity"`
	FidelityMeasure string              `json:"fidelity_measure,omitempty"`
	MaxAttempts     int                 `json:"max_attempts,omitempty"`
	MinNovelty      float64             `json:"min_novelty,omitempty"`
	MinNoveltyAuto  bool                `json:"min_novelty_auto,omitempty"`
	Seed            *uint64             `json:"seed,omitempty"`
	Prompts         map[string][]string `json:"prompts,omitempty"`
	ShardSize       int                 `json:"shard_size,omitempty"`
}

// Dataset is a dataset job as GET /v1/datasets/{id} shows it.
type Dataset struct {
	ID              string          `json:"id"`
	Model           string          `json:"model"`
	State           string          `json:"state"`
	Progress        Progress        `json:"progress"`
	Request         json.RawMessage `json:"request"`
	Classes         []DatasetClass  `json:"classes"`
	Report          json.RawMessage `json:"report,omitempty"`
	Error           string          `json:"error,omitempty"`
	CancelRequested bool            `json:"cancel_requested,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	StartedAt       time.Time       `json:"started_at,omitzero"`
	FinishedAt      time.Time       `json:"finished_at,omitzero"`
	Links           DatasetLinks    `json:"links"`
}

// DatasetClass is one class of a dataset job. Done is set once the class
// has all its images (or ran out of budget). Kept, Made and Acceptance
// (kept / made) come from the final report; while the job runs they are
// the class's own counts, as the worker reported them when the class was
// done (left out when the counts cannot be told apart, as after a resumed
// run).
type DatasetClass struct {
	Class      string   `json:"class"`
	Done       bool     `json:"done"`
	Kept       *int     `json:"kept,omitempty"`
	Made       *int     `json:"made,omitempty"`
	Acceptance *float64 `json:"acceptance,omitempty"`
}

// DatasetLinks are a dataset job's resources.
type DatasetLinks struct {
	Self     string `json:"self"`
	Events   string `json:"events"`
	Download string `json:"download"`
}
