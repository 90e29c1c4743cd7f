package auth

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Memory keeps keys, rates and quotas in process memory, for the
// one-process studio: nothing survives a restart.
type Memory struct {
	cfg    Config
	mu     sync.Mutex
	byID   map[string]*Key
	byHash map[string]string // hash → id
	tat    map[string]time.Time
	active map[string]map[string]time.Time // subject → member → expiry
}

// NewMemory makes an empty store.
func NewMemory(cfg Config) *Memory {
	return &Memory{cfg: cfg.withDefaults(), byID: map[string]*Key{}, byHash: map[string]string{},
		tat: map[string]time.Time{}, active: map[string]map[string]time.Time{}}
}

// Ping always succeeds.
func (m *Memory) Ping(context.Context) error { return nil }

// Close does nothing.
func (m *Memory) Close() error { return nil }

// Create stores a new key and returns it with its token, shown only now.
func (m *Memory) Create(ctx context.Context, n NewKey) (Key, string, error) {
	k, token, err := newKey(n, time.Now())
	if err != nil {
		return Key{}, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byID[k.ID] = &k
	m.byHash[k.Hash] = k.ID
	return k, token, nil
}

// Lookup finds the key of a token: ErrUnknownKey, or ErrRevoked with the key.
func (m *Memory) Lookup(ctx context.Context, token string) (Key, error) {
	if !WellFormed(token) {
		return Key{}, ErrUnknownKey
	}
	h := HashToken(token)
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.byHash[h]
	if !ok {
		return Key{}, ErrUnknownKey
	}
	k := *m.byID[id]
	if !k.RevokedAt.IsZero() {
		return k, ErrRevoked
	}
	return k, nil
}

// Revoke marks a key revoked (once; later calls return it unchanged).
func (m *Memory) Revoke(ctx context.Context, id string) (Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.byID[id]
	if !ok {
		return Key{}, fmt.Errorf("revoke %q: %w", id, ErrNotFound)
	}
	if k.RevokedAt.IsZero() {
		k.RevokedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	return *k, nil
}

// List returns every key, revoked ones included, oldest first.
func (m *Memory) List(ctx context.Context) ([]Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	res := make([]Key, 0, len(m.byID))
	for _, k := range m.byID {
		res = append(res, *k)
	}
	sortKeys(res)
	return res, nil
}

func sortKeys(ks []Key) {
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].CreatedAt.Equal(ks[j].CreatedAt) {
			return ks[i].CreatedAt.Before(ks[j].CreatedAt)
		}
		return ks[i].ID < ks[j].ID
	})
}

// Allow spends one request of subject's budget of rate per second with
// bursts of burst; it returns 0, or how long to wait when refused.
func (m *Memory) Allow(ctx context.Context, subject string, rate float64, burst int) (time.Duration, error) {
	if rate <= 0 {
		return 0, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	tat, wait := gcra(m.tat[subject], time.Now(), rate, max(burst, 1))
	m.tat[subject] = tat
	return wait, nil
}

// Acquire reserves one of subject's limit active-job slots; it fails with
// *QuotaError listing the jobs that hold them.
func (m *Memory) Acquire(ctx context.Context, subject string, limit int) (string, error) {
	slot, err := newSlot()
	if err != nil {
		return "", err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.active[subject]
	for id, exp := range set {
		if !exp.After(now) {
			delete(set, id)
		}
	}
	if len(set) >= limit {
		qe := &QuotaError{Limit: limit}
		for id := range set {
			if !strings.HasPrefix(id, slotPrefix) {
				qe.Jobs = append(qe.Jobs, id)
			}
		}
		sort.Strings(qe.Jobs)
		return "", qe
	}
	if set == nil {
		set = map[string]time.Time{}
		m.active[subject] = set
	}
	set[slot] = now.Add(m.cfg.PendingTTL)
	return slot, nil
}

// Bind turns a reserved slot into the job that took it.
func (m *Memory) Bind(ctx context.Context, subject, slot, jobID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.active[subject]
	if set == nil {
		set = map[string]time.Time{}
		m.active[subject] = set
	}
	delete(set, slot)
	set[jobID] = time.Now().Add(m.cfg.JobTTL)
	return nil
}

// Active lists the jobs bound to subject that have not been released
// nor expired, oldest binding first (pending reservations are left out).
func (m *Memory) Active(ctx context.Context, subject string) ([]string, error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	type member struct {
		id  string
		exp time.Time
	}
	var list []member
	for id, exp := range m.active[subject] {
		if exp.After(now) && !strings.HasPrefix(id, slotPrefix) {
			list = append(list, member{id, exp})
		}
	}
	sort.Slice(list, func(a, b int) bool {
		if !list[a].exp.Equal(list[b].exp) {
			return list[a].exp.Before(list[b].exp)
		}
		return list[a].id < list[b].id
	})
	ids := make([]string, len(list))
	for i, m := range list {
		ids[i] = m.id
	}
	return ids, nil
}

// Release frees a slot or a finished job's place.
func (m *Memory) Release(ctx context.Context, subject, member string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.active[subject], member)
	if len(m.active[subject]) == 0 {
		delete(m.active, subject)
	}
	return nil
}
