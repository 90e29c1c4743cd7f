package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Events streams the job's events: first its current state, then every
// event after it, until the job finishes or ctx ends. Every subscriber of
// this process is served by one reader (eventHub) that tails all the
// watched jobs' event streams with one XREAD on one pooled connection, so
// the Redis connections an API process holds do not grow with its
// watchers. A Redis outage pauses the streams, which resume where they
// were.
func (r *Redis) Events(ctx context.Context, id string) (<-chan Event, error) {
	if !validID(id) {
		return nil, fmt.Errorf("events %q: %w", id, ErrNotFound)
	}
	var hj *redis.MapStringStringCmd
	var last *redis.XMessageSliceCmd
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		hj = p.HGetAll(ctx, r.k.job(id))
		last = p.XRevRangeN(ctx, r.k.events(id), "+", "-", 1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("events %s: %w", id, r.mapErr(err))
	}
	if len(hj.Val()) == 0 {
		return nil, fmt.Errorf("events %s: %w", id, ErrNotFound)
	}
	j, err := jobFromMap(hj.Val())
	if err != nil {
		return nil, fmt.Errorf("events %s: %w", id, err)
	}
	from := streamID{}
	if msgs := last.Val(); len(msgs) > 0 {
		from = parseStreamID(msgs[0].ID)
	}
	ch := make(chan Event, 16)
	first := snapshotEvent(j)
	if first.Terminal() {
		ch <- first
		close(ch)
		return ch, nil
	}
	sub := &eventSub{id: id, pos: from, notify: make(chan struct{}, 1)}
	r.hub.add(sub)
	go func() {
		defer close(ch)
		defer r.hub.remove(sub)
		send := func(ev Event) bool {
			select {
			case ch <- ev:
				return !ev.Terminal()
			case <-ctx.Done():
				return false
			}
		}
		if !send(first) {
			return
		}
		for {
			select {
			case <-sub.notify:
			case <-ctx.Done():
				return
			case <-r.hub.done:
				return
			}
			for _, ev := range sub.take() {
				if !send(ev) {
					return
				}
			}
		}
	}()
	return ch, nil
}

// streamID is a Redis stream entry id, ms-seq, comparable.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) streamID {
	a, b, _ := strings.Cut(s, "-")
	ms, _ := strconv.ParseUint(a, 10, 64)
	seq, _ := strconv.ParseUint(b, 10, 64)
	return streamID{ms, seq}
}

func (a streamID) less(b streamID) bool { return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq) }

func (a streamID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

// eventSub is one Events subscriber: the events the hub read for it and
// not yet sent. Each subscriber has its own position, so subscribers of
// one job that joined at different times each get every event after their
// own snapshot, once.
type eventSub struct {
	id     string
	pos    streamID // last entry queued for it (the hub's, under hub.mu)
	notify chan struct{}

	mu     sync.Mutex
	queued []Event
}

func (s *eventSub) push(ev Event) {
	s.mu.Lock()
	s.queued = append(s.queued, ev)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *eventSub) take() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.queued
	s.queued = nil
	return out
}

// eventHub reads the event streams of every job that has a subscriber in
// this process: one goroutine, one XREAD BLOCK over all of them at a time
// (from the earliest position among each job's subscribers), started with
// the first subscriber and stopped with the last.
type eventHub struct {
	r    *Redis
	done chan struct{} // closed by close

	mu      sync.Mutex
	subs    map[string]map[*eventSub]struct{}
	running bool
	closed  bool
}

// hubBlock bounds one XREAD wait, and so how long a new subscriber waits
// to be included in the read.
const hubBlock = 200 * time.Millisecond

func newEventHub(r *Redis) *eventHub {
	return &eventHub{r: r, done: make(chan struct{}), subs: map[string]map[*eventSub]struct{}{}}
}

func (h *eventHub) add(s *eventSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[s.id] == nil {
		h.subs[s.id] = map[*eventSub]struct{}{}
	}
	h.subs[s.id][s] = struct{}{}
	if !h.running && !h.closed {
		h.running = true
		go h.run()
	}
}

func (h *eventHub) remove(s *eventSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[s.id], s)
	if len(h.subs[s.id]) == 0 {
		delete(h.subs, s.id)
	}
}

func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// watched lists the streams to read and where to read each from.
func (h *eventHub) watched() (streams []string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 || h.closed {
		h.running = false
		return nil, false
	}
	keys := make([]string, 0, len(h.subs))
	ids := make([]string, 0, len(h.subs))
	for id, subs := range h.subs {
		first := true
		var from streamID
		for s := range subs {
			if first || s.pos.less(from) {
				from, first = s.pos, false
			}
		}
		keys = append(keys, h.r.k.events(id))
		ids = append(ids, from.String())
	}
	return append(keys, ids...), true
}

func (h *eventHub) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-h.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		streams, ok := h.watched()
		if !ok {
			return
		}
		res, err := h.r.c.XRead(ctx, &redis.XReadArgs{Streams: streams, Count: 100, Block: hubBlock}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case err != nil:
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				h.mu.Lock()
				h.running = false
				h.mu.Unlock()
				return
			}
			h.r.log.Warn("events: read failed, retrying", "streams", len(streams)/2, "err", err)
			select {
			case <-time.After(250 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		h.dispatch(res)
	}
}

// dispatch queues each entry for the subscribers of its job that have not
// had it yet.
func (h *eventHub) dispatch(res []redis.XStream) {
	prefix := h.r.k.p + "job:"
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range res {
		id := strings.TrimSuffix(strings.TrimPrefix(s.Stream, prefix), ":ev")
		subs := h.subs[id]
		for _, m := range s.Messages {
			mid := parseStreamID(m.ID)
			ev := eventFromMessage(id, m.Values)
			for sub := range subs {
				if sub.pos.less(mid) {
					sub.pos = mid
					sub.push(ev)
				}
			}
		}
	}
}
