package api

// ModelList is GET /v1/models.
type ModelList struct {
	Models []ModelSummary `json:"models"`
}

// ModelSummary is one model in the list.
type ModelSummary struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
	ImageSize   int    `json:"image_size,omitempty"`
	// Input is what the model generates from: "prompt", "class" or "" (a
	// classifier generates nothing).
	Input string `json:"input,omitempty"`
	Link  string `json:"link"`
	// Loaded says whether the model can serve, as far as this server can
	// tell; LoadCheck says how it could tell:
	//   - "generator": this process runs the generator (the one-process
	//     studio) and loaded the model's graphs, or failed to;
	//   - "catalog": an API-only replica, which loads no graph: the
	//     model's manifest, classes, vocabulary and graph files are present
	//     and readable here. Whether the workers loaded the graphs is for
	//     their /readyz and logs to say.
	// LoadError says why a model is not loaded.
	Loaded    bool   `json:"loaded"`
	LoadCheck string `json:"load_check"`
	LoadError string `json:"load_error,omitempty"`
}

// Values of ModelSummary.LoadCheck.
const (
	LoadCheckGenerator = "generator"
	LoadCheckCatalog   = "catalog"
)

// Model is GET /v1/models/{name}.
type Model struct {
	ModelSummary
	Scorer         string         `json:"scorer,omitempty"`
	Sizes          map[string]any `json:"sizes"`
	VocabularySize int            `json:"vocabulary_size,omitempty"`
	MaxWords       int            `json:"max_words,omitempty"`
	// Morph is true when the model can re-draw an uploaded image.
	Morph      bool     `json:"morph"`
	Attributes []string `json:"attributes"`
	Classes    []Class  `json:"classes"`
	// Card is the model card (Markdown).
	Card string `json:"card,omitempty"`
}

// Class is one class of a model's data set.
type Class struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Label string `json:"label"`
	// Trained is true for the classes the model was trained on; the others
	// are held out (a class model cannot generate them).
	Trained    bool              `json:"trained"`
	Attributes map[string]string `json:"attributes,omitempty"`
	// Example is the link of a real image of the class (a PNG from the
	// data set), when the server has one.
	Example string `json:"example,omitempty"`
}

// Vocabulary is GET /v1/models/{name}/vocabulary.
type Vocabulary struct {
	Model  string   `json:"model"`
	Prefix string   `json:"prefix"`
	Size   int      `json:"size"`
	Words  []string `json:"words"`
}

// TokenizeRequest is the body of POST /v1/tokenize.
type TokenizeRequest struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
}

// Tokens is how the model will read a prompt.
type Tokens struct {
	Model string `json:"model"`
	// Words are the known words kept, in order; Unknown are ignored;
	// Dropped are known words past MaxWords, also ignored.
	Words    []string `json:"words"`
	Unknown  []string `json:"unknown"`
	Dropped  []string `json:"dropped"`
	MaxWords int      `json:"max_words"`
	// Usable is false when the prompt would be refused, and Reason says why.
	Usable bool   `json:"usable"`
	Reason string `json:"reason,omitempty"`
}

// Reload is the answer of POST /v1/admin/models/reload.
type Reload struct {
	Models   []string `json:"models"`
	Problems []string `json:"problems"`
}
