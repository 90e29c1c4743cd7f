// Package client is a small Go client of the studio's REST API: submit
// generations, morphs and interpolations, follow their progress (SSE),
// fetch images, read models. Errors from the server are *Error, carrying
// the problem document.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fgstudio/fgstudio/studio/api"
)

// Client talks to one studio server.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// New makes a client of the server at baseURL (http or https). token is an
// API key, or "" for a local studio that runs without --require-auth. hc
// nil means http.DefaultClient; its timeout, if any, bounds event streams
// too, so leave it zero and use contexts.
func New(baseURL, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://host:port or https://host", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), token: token, hc: hc}, nil
}

// Error is a problem the server answered, with its Retry-After hint.
type Error struct {
	api.Problem
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%d %s", e.Status, e.Problem.Error())
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// request sends one request and decodes a JSON answer into out (if set).
func (c *Client) request(ctx context.Context, method, path, contentType string, body []byte, hdr http.Header, out any) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return resp, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		return resp, problemError(resp, data)
	}
	if out != nil {
		if b, ok := out.(*[]byte); ok {
			*b = data
			return resp, nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return resp, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp, nil
}

func problemError(resp *http.Response, data []byte) *Error {
	e := &Error{}
	if json.Unmarshal(data, &e.Problem) != nil || e.Status == 0 {
		e.Problem = api.Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(data))}
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	_, err = c.request(ctx, http.MethodPost, path, "application/json", body, nil, out)
	return err
}

// Generate queues a generation and returns the job at once.
func (c *Client) Generate(ctx context.Context, req api.GenerationRequest) (api.Job, error) {
	var j api.Job
	return j, c.postJSON(ctx, "/v1/generations", req, &j)
}

// Interpolate queues an interpolation.
func (c *Client) Interpolate(ctx context.Context, req api.InterpolationRequest) (api.Job, error) {
	var j api.Job
	return j, c.postJSON(ctx, "/v1/interpolations", req, &j)
}

// Morph uploads a PNG or JPEG to be re-drawn as class.
func (c *Client) Morph(ctx context.Context, model, class string, image []byte) (api.Job, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("model", model)
	w.WriteField("class", class)
	fw, err := w.CreateFormFile("image", "image")
	if err != nil {
		return api.Job{}, err
	}
	fw.Write(image)
	if err := w.Close(); err != nil {
		return api.Job{}, err
	}
	var j api.Job
	_, err = c.request(ctx, http.MethodPost, "/v1/morphs", w.FormDataContentType(), buf.Bytes(), nil, &j)
	return j, err
}

// Job reads a job with its progress and per-image scores.
func (c *Client) Job(ctx context.Context, id string) (api.Job, error) {
	var j api.Job
	_, err := c.request(ctx, http.MethodGet, "/v1/generations/"+url.PathEscape(id), "", nil, nil, &j)
	return j, err
}

// Jobs lists the key's queued and running jobs, oldest first (every kind
// its scopes reach; a data set's links are under /v1/datasets).
func (c *Client) Jobs(ctx context.Context) ([]api.JobSummary, error) {
	var l api.JobList
	_, err := c.request(ctx, http.MethodGet, "/v1/jobs", "", nil, nil, &l)
	return l.Jobs, err
}

// Cancel cancels a job.
func (c *Client) Cancel(ctx context.Context, id string) (api.Job, error) {
	var j api.Job
	_, err := c.request(ctx, http.MethodDelete, "/v1/generations/"+url.PathEscape(id), "", nil, nil, &j)
	return j, err
}

// Image fetches image k of a job (PNG with its provenance chunk).
func (c *Client) Image(ctx context.Context, id string, k int) ([]byte, error) {
	return c.Get(ctx, fmt.Sprintf("/v1/generations/%s/images/%d.png", url.PathEscape(id), k))
}

// Get fetches a link of the API (such as an attention map's png link).
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	var b []byte
	_, err := c.request(ctx, http.MethodGet, path, "", nil, nil, &b)
	return b, err
}

// Attention lists the word attention maps of image k.
func (c *Client) Attention(ctx context.Context, id string, k int) (api.Attention, error) {
	var a api.Attention
	_, err := c.request(ctx, http.MethodGet, fmt.Sprintf("/v1/generations/%s/images/%d/attention", url.PathEscape(id), k), "", nil, nil, &a)
	return a, err
}

// Models lists the served models.
func (c *Client) Models(ctx context.Context) ([]api.ModelSummary, error) {
	var l api.ModelList
	_, err := c.request(ctx, http.MethodGet, "/v1/models", "", nil, nil, &l)
	return l.Models, err
}

// Model describes one model.
func (c *Client) Model(ctx context.Context, name string) (api.Model, error) {
	var m api.Model
	_, err := c.request(ctx, http.MethodGet, "/v1/models/"+url.PathEscape(name), "", nil, nil, &m)
	return m, err
}

// Tokenize shows how a text model reads a prompt.
func (c *Client) Tokenize(ctx context.Context, model, prompt string) (api.Tokens, error) {
	var t api.Tokens
	return t, c.postJSON(ctx, "/v1/tokenize", api.TokenizeRequest{Model: model, Prompt: prompt}, &t)
}

// Events follows a job's event stream, calling fn for each event, until
// the job finishes (nil), fn fails, ctx ends or the stream breaks.
func (c *Client) Events(ctx context.Context, id string, fn func(api.Event) error) error {
	return c.events(ctx, id, "/v1/generations/"+url.PathEscape(id)+"/events", fn)
}

func (c *Client) events(ctx context.Context, id, path string, fn func(api.Event) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("events %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return problemError(resp, data)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case line == "" && data.Len() > 0:
			var ev api.Event
			if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
				return fmt.Errorf("events %s: %w", id, err)
			}
			data.Reset()
			if err := fn(ev); err != nil {
				return err
			}
			if ev.Type == api.EventFinished {
				return nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("events %s: %w", id, err)
	}
	return fmt.Errorf("events %s: %w", id, io.ErrUnexpectedEOF)
}

// Wait follows the job until it finishes and returns it; progress (may be
// nil) sees every event. A broken stream is followed again, up to a few
// times.
func (c *Client) Wait(ctx context.Context, id string, progress func(api.Event)) (api.Job, error) {
	if err := c.follow(ctx, id, c.Events, progress); err != nil {
		return api.Job{}, err
	}
	return c.Job(ctx, id)
}

// follow reads an event stream until the job finishes, following a broken
// stream again up to a few times.
func (c *Client) follow(ctx context.Context, id string, events func(context.Context, string, func(api.Event) error) error, progress func(api.Event)) error {
	var err error
	for try := range 5 {
		if try > 0 {
			select {
			case <-time.After(time.Duration(try) * 500 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err = events(ctx, id, func(ev api.Event) error {
			if progress != nil {
				progress(ev)
			}
			return nil
		})
		var pe *Error
		if err == nil || errors.As(err, &pe) || ctx.Err() != nil {
			break
		}
	}
	return err
}
