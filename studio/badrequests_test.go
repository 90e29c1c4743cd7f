package studio_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/api"
)

// bombPNG is a valid PNG header that claims w×h pixels, with almost no
// data: decoding it would allocate w·h·4 bytes.
func bombPNG(w, h uint32) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&buf, binary.BigEndian, uint32(len(data)))
		buf.WriteString(typ)
		buf.Write(data)
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		binary.Write(&buf, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return buf.Bytes()
}

// badCase is one request the API must refuse with a precise problem.
type badCase struct {
	name   string
	method string
	path   string
	body   any // []byte/string as is, else JSON
	ct     string
	token  string // "" = the user's key; "-" = none
	hdr    map[string]string
	status int
	slug   string
	field  string
	// declared: send only the headers, declaring this Content-Length,
	// and read the answer before any of the body is sent.
	declared int
}

// TestBadRequests sends a catalogue of malformed, invalid, oversized and
// unauthorised requests to a studio on a real Redis (and on the embedded
// queue): each gets its precise 4xx problem naming the field, the server
// stays up, and every job accepted around them is still there — and
// nothing else was queued.
func TestBadRequests(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		e := newEnv(t, envOpts{backend: backend, requireAuth: true})
		user := e.createKey("user", "generate")
		reader := e.createKey("reader", "datasets")
		revoked := e.createKey("gone", "generate")
		e.do("DELETE", "/v1/admin/keys/"+revoked.ID, nil, bearer(testAdminToken))
		other := e.createKey("other", "generate")
		cl, held, words := trainedClass(t, e), heldOutClass(t, e), knownWords(t, e)
		othersJob := e.submit(api.GenerationRequest{Model: classModel, Class: cl}, bearer(other.Token))
		accepted := []api.Job{othersJob}
		good := func() {
			accepted = append(accepted, e.submit(api.GenerationRequest{Model: textModel, Prompt: words, N: ptr(2)}, bearer(user.Token)))
		}
		good()

		gen := func(fields string) string {
			return `{"model":"` + textModel + `","prompt":"` + words + `"` + fields + `}`
		}
		cls := func(fields string) string { return `{"model":"` + classModel + `","class":"` + cl + `"` + fields + `}` }
		// form is a multipart body with its own boundary in its Content-Type.
		type formBody struct {
			ct   string
			body []byte
		}
		form := func(fields map[string]string, file string, img []byte) formBody {
			ct, b := multipartBody(t, fields, file, img)
			return formBody{ct, b}
		}
		morphForm := map[string]string{"model": classModel, "class": cl}
		full := testPNG(t, 200, 200)
		mTrunc := form(morphForm, "image", full[:len(full)/2])
		mGIF := form(morphForm, "image", []byte("GIF89a\x10\x00\x10\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\x10\x00\x10\x00\x00\x02\x02D\x01\x00;"))
		mBomb := form(morphForm, "image", bombPNG(100000, 100000))
		mHuge := form(morphForm, "image", append(testPNG(t, 32, 32), bytes.Repeat([]byte{0}, 5<<20)...))
		mTiny := form(morphForm, "image", testPNG(t, 8, 8))
		mNone := form(morphForm, "", nil)
		mExtra := form(map[string]string{"model": classModel, "class": cl, "strength": "2"}, "image", testPNG(t, 64, 64))
		mText := form(map[string]string{"model": textModel, "class": cl}, "image", testPNG(t, 64, 64))
		mHeld := form(map[string]string{"model": classModel, "class": held}, "image", testPNG(t, 64, 64))
		mWrongFile := form(morphForm, "picture", testPNG(t, 64, 64))
		nonUTF8 := []byte(`{"model":"` + textModel + `","prompt":"a bird ` + "\xff\xfe" + ` with wings"}`)
		deep := `{"model":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`
		P, J := "/v1/generations", "application/json"

		cases := []badCase{
			{name: "malformed JSON", path: P, body: `{"model":`, status: 400, slug: api.TypeMalformed},
			{name: "not JSON", path: P, body: `hello`, status: 400, slug: api.TypeMalformed},
			{name: "JSON array", path: P, body: `[1,2]`, status: 400, slug: api.TypeMalformed},
			{name: "empty body", path: P, body: ``, status: 400, slug: api.TypeMalformed},
			{name: "two JSON values", path: P, body: gen("") + gen(""), status: 400, slug: api.TypeMalformed},
			{name: "unknown field", path: P, body: gen(`,"colour":"red"`), status: 400, slug: api.TypeMalformed, field: "colour"},
			{name: "n as string", path: P, body: gen(`,"n":"4"`), status: 400, slug: api.TypeMalformed, field: "n"},
			{name: "prompt as number", path: P, body: `{"model":"` + textModel + `","prompt":42}`, status: 400, slug: api.TypeMalformed, field: "prompt"},
			{name: "n fractional", path: P, body: gen(`,"n":2.5`), status: 400, slug: api.TypeMalformed, field: "n"},
			{name: "n 1e40", path: P, body: gen(`,"n":1e40`), status: 400, slug: api.TypeMalformed, field: "n"},
			{name: "seed negative", path: P, body: gen(`,"seed":-1`), status: 400, slug: api.TypeMalformed, field: "seed"},
			{name: "seed past uint64", path: P, body: gen(`,"seed":18446744073709551616`), status: 400, slug: api.TypeMalformed, field: "seed"},
			{name: "model nested arrays", path: P, body: deep, status: 400, slug: api.TypeMalformed, field: "model"},
			{name: "non-UTF-8 prompt", path: P, body: nonUTF8, status: 400, slug: api.TypeMalformed, field: "prompt"},
			{name: "n negative", path: P, body: gen(`,"n":-3`), status: 422, slug: api.TypeInvalidField, field: "n"},
			{name: "n zero", path: P, body: gen(`,"n":0`), status: 422, slug: api.TypeInvalidField, field: "n"},
			{name: "n 65", path: P, body: gen(`,"n":65`), status: 422, slug: api.TypeInvalidField, field: "n"},
			{name: "n 2^40", path: P, body: gen(`,"n":1099511627776`), status: 422, slug: api.TypeInvalidField, field: "n"},
			{name: "min_fidelity 1.5", path: P, body: gen(`,"min_fidelity":1.5`), status: 422, slug: api.TypeInvalidField, field: "min_fidelity"},
			{name: "min_fidelity negative", path: P, body: gen(`,"min_fidelity":-0.1`), status: 422, slug: api.TypeInvalidField, field: "min_fidelity"},
			{name: "max_attempts 0", path: P, body: gen(`,"max_attempts":0`), status: 422, slug: api.TypeInvalidField, field: "max_attempts"},
			{name: "max_attempts 9", path: P, body: gen(`,"max_attempts":9`), status: 422, slug: api.TypeInvalidField, field: "max_attempts"},
			{name: "null body", path: P, body: `null`, status: 422, slug: api.TypeInvalidField, field: "model"},
			{name: "no model", path: P, body: `{"prompt":"a bird"}`, status: 422, slug: api.TypeInvalidField, field: "model"},
			{name: "unknown model", path: P, body: `{"model":"stable-diffusion","prompt":"a bird"}`, status: 422, slug: api.TypeUnknownModel, field: "model"},
			{name: "classifier as generator", path: P, body: `{"model":"` + scorer + `","prompt":"a bird"}`, status: 422, slug: api.TypeInvalidField, field: "model"},
			{name: "text model with class", path: P, body: gen(`,"class":"` + cl + `"`), status: 422, slug: api.TypeInvalidField, field: "class"},
			{name: "class model with prompt", path: P, body: cls(`,"prompt":"a bird"`), status: 422, slug: api.TypeInvalidField, field: "prompt"},
			{name: "empty prompt", path: P, body: `{"model":"` + textModel + `","prompt":""}`, status: 422, slug: api.TypeInvalidField, field: "prompt"},
			{name: "prompt of punctuation", path: P, body: `{"model":"` + textModel + `","prompt":"?!, ...;"}`, status: 422, slug: api.TypeInvalidField, field: "prompt"},
			{name: "prompt of unknown words", path: P, body: `{"model":"` + textModel + `","prompt":"qqxyzzy plugh"}`, status: 422, slug: api.TypeUnknownWords, field: "prompt"},
			{name: "prompt 2001 bytes", path: P, body: `{"model":"` + textModel + `","prompt":"` + strings.Repeat("a", 2001) + `"}`, status: 422, slug: api.TypeInvalidField, field: "prompt"},
			{name: "prompt 10 MB", path: P, declared: 10 << 20, status: 413, slug: api.TypeBodyTooLarge},
			{name: "unknown class", path: P, body: `{"model":"` + classModel + `","class":"Dodo"}`, status: 422, slug: api.TypeUnknownClass, field: "class"},
			{name: "held-out class", path: P, body: `{"model":"` + classModel + `","class":"` + held + `"}`, status: 422, slug: api.TypeUnknownClass, field: "class"},
			{name: "class model without class", path: P, body: `{"model":"` + classModel + `"}`, status: 422, slug: api.TypeInvalidField, field: "class"},
			{name: "text/plain", path: P, body: gen(""), ct: "text/plain", status: 415, slug: api.TypeMediaType, field: "Content-Type"},
			{name: "no Content-Type", path: P, body: gen(""), ct: "-", status: 415, slug: api.TypeMediaType, field: "Content-Type"},
			{name: "latin-1 charset", path: P, body: gen(""), ct: "application/json; charset=latin1", status: 415, slug: api.TypeMediaType, field: "Content-Type"},
			{name: "idempotency key of 300 bytes", path: P, body: gen(`,"idempotency_key":"` + strings.Repeat("k", 300) + `"`), status: 422, slug: api.TypeInvalidField, field: "idempotency_key"},
			{name: "idempotency key header and body differ", path: P, body: gen(`,"idempotency_key":"a"`), hdr: map[string]string{"Idempotency-Key": "b"}, status: 422, slug: api.TypeInvalidField, field: "idempotency_key"},
			{name: "morph as text/plain", path: "/v1/morphs", body: "x", ct: "text/plain", status: 415, slug: api.TypeMediaType, field: "Content-Type"},
			{name: "morph without image", path: "/v1/morphs", body: mNone.body, ct: mNone.ct, status: 422, slug: api.TypeInvalidField, field: "image"},
			{name: "morph image under another name", path: "/v1/morphs", body: mWrongFile.body, ct: mWrongFile.ct, status: 400, slug: api.TypeMalformed, field: "picture"},
			{name: "morph truncated PNG", path: "/v1/morphs", body: mTrunc.body, ct: mTrunc.ct, status: 422, slug: api.TypeInvalidImage, field: "image"},
			{name: "morph GIF", path: "/v1/morphs", body: mGIF.body, ct: mGIF.ct, status: 422, slug: api.TypeInvalidImage, field: "image"},
			{name: "morph decompression bomb", path: "/v1/morphs", body: mBomb.body, ct: mBomb.ct, status: 413, slug: api.TypeImageTooLarge, field: "image"},
			{name: "morph 5 MB image", path: "/v1/morphs", body: mHuge.body, ct: mHuge.ct, status: 413, slug: api.TypeImageTooLarge, field: "image"},
			{name: "morph 8x8 image", path: "/v1/morphs", body: mTiny.body, ct: mTiny.ct, status: 422, slug: api.TypeInvalidImage, field: "image"},
			{name: "morph unknown form field", path: "/v1/morphs", body: mExtra.body, ct: mExtra.ct, status: 400, slug: api.TypeMalformed, field: "strength"},
			{name: "morph with a text model", path: "/v1/morphs", body: mText.body, ct: mText.ct, status: 422, slug: api.TypeInvalidField, field: "model"},
			{name: "morph to a held-out class", path: "/v1/morphs", body: mHeld.body, ct: mHeld.ct, status: 422, slug: api.TypeUnknownClass, field: "class"},
			{name: "morph form without boundary", path: "/v1/morphs", body: mTiny.body, ct: "multipart/form-data", status: 400, slug: api.TypeMalformed},
			{name: "morph JSON bad base64", path: "/v1/morphs", body: `{"model":"` + classModel + `","class":"` + cl + `","image":"***"}`, ct: J, status: 400, slug: api.TypeMalformed, field: "image"},
			{name: "interpolation without from", path: "/v1/interpolations", body: `{"model":"` + classModel + `","to":{"class":"` + cl + `"}}`, status: 422, slug: api.TypeInvalidField, field: "from"},
			{name: "interpolation unknown class", path: "/v1/interpolations", body: `{"model":"` + classModel + `","from":{"class":"Dodo"},"to":{"class":"` + cl + `"}}`, status: 422, slug: api.TypeUnknownClass, field: "from.class"},
			{name: "interpolation of 1 step", path: "/v1/interpolations", body: `{"model":"` + classModel + `","from":{"class":"` + cl + `"},"to":{"class":"` + cl + `"},"n":1}`, status: 422, slug: api.TypeInvalidField, field: "n"},
			{name: "interpolation seed as string", path: "/v1/interpolations", body: `{"model":"` + classModel + `","from":{"class":"` + cl + `","seed":"1"},"to":{"class":"` + cl + `"}}`, status: 400, slug: api.TypeMalformed, field: "from.seed"},
			{name: "interpolation with a text model", path: "/v1/interpolations", body: `{"model":"` + textModel + `","from":{"class":"` + cl + `"},"to":{"class":"` + cl + `"}}`, status: 422, slug: api.TypeInvalidField, field: "model"},
			{name: "tokenize unknown model", path: "/v1/tokenize", body: `{"model":"nope","prompt":"a bird"}`, status: 422, slug: api.TypeUnknownModel, field: "model"},
			{name: "tokenize unknown field", path: "/v1/tokenize", body: `{"model":"` + textModel + `","text":"a bird"}`, status: 400, slug: api.TypeMalformed, field: "text"},
			{name: "no key", path: P, body: gen(""), token: "-", status: 401, slug: api.TypeUnauthorized, field: "Authorization"},
			{name: "unknown key", path: P, body: gen(""), token: "fgs_" + strings.Repeat("x", 43), status: 401, slug: api.TypeUnauthorized, field: "Authorization"},
			{name: "revoked key", path: P, body: gen(""), token: revoked.Token, status: 401, slug: api.TypeUnauthorized, field: "Authorization"},
			{name: "Basic auth", path: P, body: gen(""), token: "-", hdr: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, status: 401, slug: api.TypeUnauthorized, field: "Authorization"},
			{name: "key without generate scope", path: P, body: gen(""), token: reader.Token, status: 403, slug: api.TypeForbidden, field: "Authorization"},
			{name: "another key's job", method: "GET", path: othersJob.Links.Self, status: 404, slug: api.TypeNotFound},
			{name: "cancel another key's job", method: "DELETE", path: othersJob.Links.Self, status: 404, slug: api.TypeNotFound},
			{name: "another key's events", method: "GET", path: othersJob.Links.Events, status: 404, slug: api.TypeNotFound},
			{name: "unknown job", method: "GET", path: "/v1/generations/0190f7a4-7c6e-7d3c-8f00-000000000000", status: 404, slug: api.TypeNotFound},
			{name: "job id that is a path", method: "GET", path: "/v1/generations/..%2f..%2fetc", status: 404, slug: api.TypeNotFound},
			{name: "PUT on generations", method: "PUT", path: P, body: gen(""), status: 405, slug: api.TypeMethodNotAllowed},
			{name: "key with unknown scope", path: "/v1/admin/keys", body: `{"name":"x","scopes":["root"]}`, token: testAdminToken, status: 422, slug: api.TypeInvalidField, field: "scopes"},
		}
		if len(cases) < 40 {
			t.Fatalf("only %d cases", len(cases))
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				method, ct := c.method, c.ct
				if method == "" {
					method = "POST"
				}
				var body any = c.body
				if s, ok := c.body.(string); ok {
					body = []byte(s)
				}
				if ct == "" && c.body != nil {
					ct = J
				}
				var opts []opt
				if ct != "-" && ct != "" {
					opts = append(opts, header("Content-Type", ct))
				}
				switch c.token {
				case "":
					opts = append(opts, bearer(user.Token))
				case "-":
				default:
					opts = append(opts, bearer(c.token))
				}
				for k, v := range c.hdr {
					opts = append(opts, header(k, v))
				}
				var resp *http.Response
				var out []byte
				if c.declared > 0 {
					resp, out = e.declare(method, c.path, c.declared, opts...)
				} else {
					resp, out = e.do(method, c.path, body, opts...)
				}
				p := problemOf(t, out)
				if resp.StatusCode != c.status || p.Slug() != c.slug || p.Field != c.field {
					t.Errorf("%d %s field %q, want %d %s field %q: %s", resp.StatusCode, p.Slug(), p.Field, c.status, c.slug, c.field, p.Detail)
				}
			})
			if i%10 == 9 {
				good()
			}
		}

		if resp, _ := e.do("GET", "/healthz", nil); resp.StatusCode != 200 {
			t.Fatalf("server down after the catalogue: %d", resp.StatusCode)
		}
		good()
		for _, j := range accepted {
			tok := user.Token
			if j.ID == othersJob.ID {
				tok = other.Token
			}
			resp, body := e.do("GET", j.Links.Self, nil, bearer(tok))
			if got := decode[api.Job](t, resp, body, 200); got.State != "queued" || got.ID != j.ID {
				t.Errorf("accepted job %s: %+v", j.ID, got)
			}
		}
		st, err := e.q.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.Depth[queue.Interactive] != len(accepted) {
			t.Fatalf("%d jobs queued, %d accepted: a refused request was queued or an accepted one lost", st.Depth[queue.Interactive], len(accepted))
		}
		fmt.Fprintf(testingWriter{t}, "%d bad requests refused, %d jobs accepted around them\n", len(cases), len(accepted))
	})
}

type testingWriter struct{ t *testing.T }

func (w testingWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// declare sends a request's headers with a Content-Length but none of
// its body, and reads the answer: what a server that refuses an
// oversized body from its declared length answers, without the client
// being cut off mid-upload.
func (e *env) declare(method, path string, length int, opts ...opt) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, o := range opts {
		o(req)
	}
	conn, err := net.Dial("tcp", req.URL.Host)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", method, path, req.URL.Host, length)
	req.Header.Write(&head)
	head.WriteString("\r\n")
	if _, err := conn.Write([]byte(head.String())); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		e.t.Fatalf("no answer to a declared %d-byte body: %v", length, err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkAgainstDoc(e.t, req, nil, resp, out)
	return resp, out
}
