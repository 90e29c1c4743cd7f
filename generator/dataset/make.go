package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/fgstudio/fgstudio/contract/datasetspec"
	"github.com/fgstudio/fgstudio/generator"
	"github.com/fgstudio/fgstudio/internal/catalog"
)

// classState is the progress of one class.
type classState struct {
	plan     classPlan
	accepted []Attempt // in attempt order
	attempts int       // next attempt number = attempts made
	rejFid   int
	rejNov   int
	measures map[string]int // attempts judged by each fidelity measure
}

func (c *classState) judged(measure string) {
	if c.measures == nil {
		c.measures = map[string]int{}
	}
	c.measures[measure]++
}

func (c *classState) need(per int) int  { return per - len(c.accepted) }
func (c *classState) budget(s Spec) int { return s.MaxAttempts*s.PerClass - c.attempts }
func (c *classState) done(s Spec, spare int) bool {
	return c.need(s.PerClass) <= 0 || c.budget(s)+max(spare, 0) <= 0
}

// spareBudget is the budget that filled classes left unspent, less what
// unfilled classes already took beyond their own: the budget adapts to
// the classes, a hard class may make more attempts than MaxAttempts ×
// PerClass when easy ones needed fewer, and the whole job never makes
// more than MaxAttempts × PerClass × classes. It is a function of the
// states alone, so a continued job plans as an uninterrupted one.
func spareBudget(states []*classState, s Spec) int {
	spare := 0
	for _, st := range states {
		if st.need(s.PerClass) <= 0 {
			spare += st.budget(s)
		} else {
			spare += min(0, st.budget(s))
		}
	}
	return spare
}
func (c *classState) file(k int) string    { return fmt.Sprintf("%s_%06d.png", c.plan.Dir, k) }
func (c *classState) relPath(k int) string { return imagesDir + "/" + c.plan.Dir + "/" + c.file(k) }

// validator checks a request without running it (generator.Service).
type validator interface {
	Validate(model string, r generator.Request) error
}

// Make makes the data set that spec describes in dir, or continues the
// one an earlier, interrupted call left there, and writes its layouts,
// report and manifest. m is the generator's catalog entry (its kind and
// classes). It returns the report also when some class ran out of
// budget (Report.Short lists them); errors are for work that could not
// be done.
func Make(ctx context.Context, svc Service, m *catalog.Model, spec Spec, dir string, opt Options) (*Report, error) {
	if opt.Batch < 1 {
		opt.Batch = 64
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Progress == nil {
		opt.Progress = func(Progress) {}
	}
	spec, plans, err := prepare(svc, m, spec, dir, opt.Reference, true)
	if err != nil {
		return nil, err
	}
	unlock, err := openDir(dir, spec)
	if err != nil {
		return nil, err
	}
	defer unlock()
	states, err := restore(dir, plans)
	if err != nil {
		return nil, err
	}
	j, err := openJournal(filepath.Join(dir, journalFile))
	if err != nil {
		return nil, err
	}
	defer j.close()

	r := &run{svc: svc, spec: spec, dir: dir, opt: opt, states: states, journal: j, start: opt.Now()}
	for _, st := range states {
		r.resumed += min(len(st.accepted), spec.PerClass)
	}
	r.report("generating", "")
	for {
		batch := planBatch(states, spec, opt.Batch)
		if len(batch) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("data set %s: stopped: %w", dir, err)
		}
		if err := r.generate(ctx, batch); err != nil {
			return nil, fmt.Errorf("data set %s: %w", dir, err)
		}
		r.report("generating", batch[len(batch)-1].st.plan.Class.Name)
	}

	r.report("writing", "")
	rep, err := finish(ctx, svc, m, spec, dir, states, opt.Reference)
	if err != nil {
		return nil, err
	}
	rep.Run = r.stats()
	if err := writeReport(dir, rep); err != nil {
		return nil, err
	}
	r.report("done", "")
	return rep, nil
}

// NearCopyQuantile is the share of real training images that are closer
// to their nearest other training image than the automatic novelty
// threshold (Spec.MinNoveltyAuto): a generated image closer than that to
// a training image is a near-copy.
const NearCopyQuantile = 0.01

// Preflight makes every check Make makes before any work — the spec, its
// classes and prompts against the model (and svc's Validate, when svc is
// not nil and has one), a novelty threshold without a reference, and the
// directory (empty, or holding a data set of the same spec) — and writes
// nothing. withReference says whether Make will be given a reference.
// It returns the spec as Make will store it; with MinNoveltyAuto its
// threshold is the one a data set being continued started with, or 0 when
// the reference still has to give it.
func Preflight(svc Service, m *catalog.Model, spec Spec, dir string, withReference bool) (Spec, error) {
	var ref *Reference
	if withReference {
		ref = &Reference{} // a stand-in: no threshold is computed
	}
	spec, _, err := prepare(svc, m, spec, dir, ref, false)
	if err != nil {
		return spec, err
	}
	if err := checkEmpty(dir); err != nil {
		return spec, err
	}
	if old, err := ReadSpec(dir); err == nil {
		if _, err := grow(*old, spec); err != nil {
			return spec, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return spec, err
	}
	return spec, nil
}

// prepare checks spec against m (and svc, when not nil), resolves its
// classes and prompts, and sets an automatic novelty threshold: the one
// the data set in dir started with, else (threshold) the near-copy
// distance of ref (without ref there is no threshold and no check).
func prepare(svc Service, m *catalog.Model, spec Spec, dir string, ref *Reference, threshold bool) (Spec, []classPlan, error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return spec, nil, err
	}
	if m == nil || m.Manifest.Name != spec.Model {
		return spec, nil, &SpecError{Field: "model", Msg: fmt.Sprintf("no model %q", spec.Model)}
	}
	if spec.MinNoveltyAuto && ref == nil {
		// No real images, no threshold to derive: no novelty check, as
		// the CLI without --data (the report says none ran).
		spec.MinNoveltyAuto = false
	}
	if spec.MinNoveltyAuto {
		// A job being continued keeps the threshold it started with (a
		// recomputed one could differ in the last digit on another machine).
		if old, err := ReadSpec(dir); err == nil && old.MinNoveltyAuto {
			spec.MinNovelty = old.MinNovelty
		} else if threshold {
			spec.MinNovelty = math.Floor(ref.NearCopyDistance(NearCopyQuantile)*1000) / 1000
		}
	}
	if spec.MinNovelty > 0 && ref == nil {
		return spec, nil, &SpecError{Field: "min_novelty", Msg: "a novelty threshold needs the real training images (a reference)"}
	}
	plans, err := datasetspec.Plan(m, &spec)
	if err != nil {
		return spec, nil, err
	}
	if svc != nil {
		if err := validatePlans(svc, spec, plans); err != nil {
			return spec, nil, err
		}
	}
	return spec, plans, nil
}

// validatePlans asks a service that can (validator) whether each class
// and prompt of the plans is one the model takes, before any work.
func validatePlans(svc Service, spec Spec, plans []classPlan) error {
	v, ok := svc.(validator)
	if !ok {
		return nil
	}
	for _, p := range plans {
		prompts := p.Prompts
		if len(prompts) == 0 {
			prompts = []string{""} // a class model: check the class
		}
		for _, prompt := range prompts {
			if err := v.Validate(spec.Model, generator.Request{Class: p.Class.Name, Prompt: prompt, N: 1}); err != nil {
				field := "classes"
				if prompt != "" {
					field = "prompts"
				}
				return &SpecError{Field: field, Msg: fmt.Sprintf("class %s: %v", p.Class.Name, err)}
			}
		}
	}
	return nil
}

// openDir makes dir (empty, or one a run of the same spec left), locks it
// for this process and writes the spec into it.
func openDir(dir string, spec Spec) (unlock func(), err error) {
	if err := checkEmpty(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if unlock, err = lockDir(dir); err != nil {
		return nil, err
	}
	if err := prepareDir(dir, spec); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// run is one Make in progress: the classes' states and the counts of
// this process.
type run struct {
	svc     Service
	spec    Spec
	dir     string
	opt     Options
	states  []*classState
	journal *journal

	start               time.Time
	resumed, made, kept int
	genTime             time.Duration
}

// report sends a Progress for phase, the last batch having been of class.
func (r *run) report(phase, class string) {
	target := r.spec.PerClass * len(r.states)
	p := Progress{Phase: phase, Target: target, Resumed: r.resumed, Classes: len(r.states), Class: class, ETA: -1}
	spare := spareBudget(r.states, r.spec)
	for _, st := range r.states {
		p.Accepted += len(st.accepted)
		p.Attempts += st.attempts
		if st.done(r.spec, spare) {
			p.ClassesDone++
		}
	}
	p.Elapsed = r.opt.Now().Sub(r.start)
	if s := p.Elapsed.Seconds(); s > 0 {
		p.AcceptedPerSec = float64(r.kept) / s
		p.AttemptsPerSec = float64(r.made) / s
	}
	if p.AcceptedPerSec > 0 {
		p.ETA = time.Duration(float64(target-p.Accepted) / p.AcceptedPerSec * float64(time.Second))
	}
	if phase == "done" {
		p.ETA = 0
	}
	r.opt.Progress(p)
}

// generate makes the images of one batch, judges each (fidelity, then
// novelty), writes the kept ones and journals every attempt.
func (r *run) generate(ctx context.Context, batch []slot) error {
	reqs := make([]generator.Request, len(batch))
	for i, b := range batch {
		reqs[i] = generator.Request{Class: b.st.plan.Class.Name, N: 1, Seed: b.st.plan.Seed + uint64(b.k)}
		if len(b.st.plan.Prompts) > 0 {
			reqs[i].Prompt = b.st.plan.Prompts[b.k%len(b.st.plan.Prompts)]
		}
	}
	t0 := time.Now()
	out, err := r.svc.Generate(ctx, r.spec.Model, reqs)
	r.genTime += time.Since(t0)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	feats := make([][]float32, len(out))
	for i := range out {
		feats[i] = out[i][0].Scores.Features
	}
	ids, dists := make([]int, len(out)), make([]float64, len(out))
	if r.opt.Reference != nil {
		ids, dists = r.opt.Reference.nearestAll(feats)
	} else {
		for i := range ids {
			ids[i], dists[i] = -1, -1
		}
	}
	var lines []Attempt
	for i, b := range batch {
		st := b.st
		if st.need(r.spec.PerClass) <= 0 {
			continue // the class filled up earlier in this batch
		}
		a, err := r.judge(b, out[i][0], reqs[i].Prompt, dists[i], ids[i])
		if err != nil {
			return err
		}
		lines = append(lines, a)
	}
	return r.journal.append(lines)
}

// judge decides on the image of slot b, keeps it when it passes (writing
// its file) and counts the attempt.
func (r *run) judge(b slot, img generator.Image, prompt string, novelty float64, neighbour int) (Attempt, error) {
	st := b.st
	a := Attempt{Class: st.plan.Class.Name, Attempt: b.k, Seed: img.Seed, Prompt: prompt,
		Novelty: novelty, Neighbour: neighbour, Scores: Scores{ClassProb: img.Scores.ClassProb,
			AttributeAgreement: img.Scores.AttributeAgreement, AttributeBasis: img.Scores.AttributeBasis,
			DAMSMSimilarity: img.Scores.DAMSMSimilarity,
			AttributeMatch:  img.Scores.AttributeMatch, TextSimilarity: img.Scores.TextSimilarity}}
	if len(img.Scores.Top) > 0 {
		a.Top1 = img.Scores.Top[0].Class
	}
	a.Fidelity, a.Measure = fidelity(img.Scores, r.spec.Measure)
	if a.Measure == "" {
		return a, fmt.Errorf("%s gave no %s score for class %s", r.spec.Model, measureName(r.spec.Measure), st.plan.Class.Name)
	}
	st.judged(a.Measure)
	switch {
	case a.Fidelity < r.spec.MinFidelity:
		a.Rejected = "fidelity"
		st.rejFid++
	case r.opt.Reference != nil && a.Novelty < r.spec.MinNovelty:
		a.Rejected = "novelty"
		st.rejNov++
	default:
		a.Accepted = true
		a.File = st.relPath(b.k)
		sum := sha256.Sum256(img.PNG)
		a.SHA256 = hex.EncodeToString(sum[:])
		if err := writeAtomic(filepath.Join(r.dir, filepath.FromSlash(a.File)), img.PNG); err != nil {
			return a, err
		}
		st.accepted = append(st.accepted, a)
		r.kept++
	}
	st.attempts = b.k + 1
	r.made++
	return a, nil
}

// stats are the counts and rates of this process's part of the run.
func (r *run) stats() RunStats {
	elapsed := r.opt.Now().Sub(r.start).Seconds()
	rs := RunStats{Seconds: elapsed, GenerateSeconds: r.genTime.Seconds(), Made: r.made, Kept: r.kept, Resumed: r.resumed}
	if elapsed > 0 {
		rs.KeptPerSec = float64(r.kept) / elapsed
		rs.MadePerSec = float64(r.made) / elapsed
	}
	if r.genTime > 0 {
		rs.GeneratorPerSec = float64(r.made) / r.genTime.Seconds()
	}
	return rs
}

func measureName(m string) string {
	if m == "" {
		return "fidelity"
	}
	return m
}

// fidelity is the score an image is filtered on: the scorer's own choice
// (Scores.Fidelity: class_probability for a trained class,
// attribute_agreement over the class's attributes for a held-out one), or
// the measure the spec forces.
func fidelity(s generator.Scores, measure string) (float64, string) {
	clamp := func(p *float64, name string) (float64, string) {
		if p == nil {
			return 0, ""
		}
		return math.Max(0, math.Min(1, *p)), name
	}
	switch measure = datasetspec.CanonicalMeasure(measure); measure {
	case generator.FidelityClassProbability:
		return clamp(s.ClassProb, measure)
	case generator.FidelityAttributeAgreement:
		return clamp(s.AttributeAgreement, measure)
	case generator.FidelityDAMSMSimilarity:
		return clamp(s.DAMSMSimilarity, measure)
	}
	return s.Fidelity()
}

type slot struct {
	st *classState
	k  int // attempt number
}

// planBatch picks the next attempts: each unfilled class asks for what
// it still needs divided by its acceptance rate so far, within its own
// budget and then the spare one (spareBudget), in class order until the
// batch is full.
func planBatch(states []*classState, spec Spec, size int) []slot {
	var res []slot
	spare := spareBudget(states, spec)
	for _, st := range states {
		if st.done(spec, spare) {
			continue
		}
		own := max(st.budget(spec), 0)
		rate := (float64(len(st.accepted)) + 1) / (float64(st.attempts) + 2)
		want := int(math.Ceil(float64(st.need(spec.PerClass)) / rate))
		want = min(want, own+max(spare, 0), size-len(res))
		spare -= max(0, want-own)
		for k := 0; k < want; k++ {
			res = append(res, slot{st, st.attempts + k})
		}
		if len(res) == size {
			break
		}
	}
	return res
}

// prepareDir creates dir, or checks that it holds this spec's data set.
func prepareDir(dir string, spec Spec) error {
	raw, err := os.ReadFile(filepath.Join(dir, specFile))
	switch {
	case err == nil:
		var old Spec
		if err := json.Unmarshal(raw, &old); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, specFile), err)
		}
		grown, err := grow(old, spec)
		if err != nil || !grown {
			return err
		}
		out, err := json.MarshalIndent(spec, "", "  ")
		if err != nil {
			return err
		}
		return writeAtomic(filepath.Join(dir, specFile), append(out, '\n'))
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := checkEmpty(dir); err != nil {
		return err
	}
	raw, err = json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, specFile), append(raw, '\n'))
}

// grow says whether spec continues the data set old was made with:
// more images per class, or a larger budget, continue the job (the kept
// images of a class are its first PerClass accepted attempts, so the
// result is what a run with the new numbers from the start makes);
// anything else would change images already made (ErrSpecChanged).
// grown is true when spec asks for more than old.
func grow(old, spec Spec) (grown bool, err error) {
	g := old
	if spec.PerClass >= old.PerClass && spec.MaxAttempts >= old.MaxAttempts {
		g.PerClass, g.MaxAttempts = spec.PerClass, spec.MaxAttempts
	}
	if f := specDiff(g, spec); f != "" {
		return false, fmt.Errorf("%w: %s differs (%s); use a new directory, or the same flags as before (per_class and max_attempts may only grow)",
			ErrSpecChanged, f, specValues(f, old, spec))
	}
	return specDiff(g, old) != "", nil
}

// specValues shows field f (a JSON name) of the stored spec and the new one.
func specValues(f string, old, spec Spec) string {
	pick := func(s Spec) string {
		raw, _ := json.Marshal(s)
		var m map[string]json.RawMessage
		_ = json.Unmarshal(raw, &m)
		v := string(m[f])
		if len(v) > 80 {
			v = v[:77] + "..."
		}
		if v == "" {
			v = "none"
		}
		return v
	}
	return fmt.Sprintf("the directory's data set has %s, this run %s", pick(old), pick(spec))
}

// checkEmpty accepts a directory that is missing, empty (but for a lock
// file), or holds a data set (spec.json).
func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == specFile {
			return nil
		}
	}
	for _, e := range entries {
		if e.Name() != lockFile {
			return fmt.Errorf("%w: %s", ErrNotEmpty, dir)
		}
	}
	return nil
}

// specDiff names the first field (by its JSON name) where a and b differ.
func specDiff(a, b Spec) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	t := va.Type()
	for i := 0; i < t.NumField(); i++ {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return ""
}

// restore reads the journal back into class states, checks that every
// kept image is on disk as journalled, and removes images of attempts
// that were never journalled (the run died between file and journal).
func restore(dir string, plans []classPlan) ([]*classState, error) {
	states := make([]*classState, len(plans))
	byName := map[string]*classState{}
	for i, p := range plans {
		states[i] = &classState{plan: p}
		byName[p.Class.Name] = states[i]
		if err := os.MkdirAll(filepath.Join(dir, imagesDir, p.Dir), 0o755); err != nil {
			return nil, err
		}
	}
	lines, err := readJournal(filepath.Join(dir, journalFile))
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, a := range lines {
		st, ok := byName[a.Class]
		if !ok || a.Attempt != st.attempts {
			return nil, fmt.Errorf("%s: attempt %d of class %q is out of order; the file was edited", journalFile, a.Attempt, a.Class)
		}
		st.attempts++
		if a.Measure != "" {
			a.Measure = datasetspec.CanonicalMeasure(a.Measure) // journals of the first scorer
			st.judged(a.Measure)
		}
		switch {
		case a.Accepted:
			st.accepted = append(st.accepted, a)
			keep[a.File] = true
		case a.Rejected == "novelty":
			st.rejNov++
		default:
			st.rejFid++
		}
	}
	// Every file under images/ is either journalled (and intact) or
	// removed; metadata.jsonl is rewritten at the end.
	root := filepath.Join(dir, imagesDir)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		if keep[rel] || rel == imagesDir+"/"+metadataFile {
			return nil
		}
		return os.Remove(path)
	})
	if err != nil {
		return nil, err
	}
	for _, st := range states {
		for _, a := range st.accepted {
			sum, _, err := fileSHA256(filepath.Join(dir, filepath.FromSlash(a.File)))
			if err != nil {
				return nil, fmt.Errorf("kept image %s: %w (the data set was changed by hand; start a new directory)", a.File, err)
			}
			if sum != a.SHA256 {
				return nil, fmt.Errorf("kept image %s: sha256 %s, journal says %s (the data set was changed by hand; start a new directory)", a.File, sum, a.SHA256)
			}
		}
	}
	return states, nil
}
