package studio

import (
	"context"
	"sync"
	"time"

	"github.com/fgstudio/fgstudio/queue"
	"github.com/fgstudio/fgstudio/studio/auth"
)

// While the key store (Redis) is unreachable, a key that this process
// verified within keyCacheMaxAge still authenticates, so that the reads
// that need no store (models, classes, vocabularies, tokenize) keep
// answering; routes that need the store answer 503. A key revoked during
// the outage is refused once the store answers again.
const (
	keyCacheMaxAge  = time.Hour
	keyCacheEntries = 10000
)

// keyCache remembers the keys looked up successfully, by token hash.
type keyCache struct {
	mu sync.Mutex
	m  map[string]cachedKey
}

type cachedKey struct {
	key auth.Key
	at  time.Time
}

func (c *keyCache) put(token string, k auth.Key) {
	h := auth.HashToken(token)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedKey{}
	}
	if _, ok := c.m[h]; !ok && len(c.m) >= keyCacheEntries {
		for old := range c.m { // drop any one: the cache is a fallback
			delete(c.m, old)
			break
		}
	}
	c.m[h] = cachedKey{key: k, at: time.Now()}
}

func (c *keyCache) drop(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, auth.HashToken(token))
}

func (c *keyCache) get(token string) (auth.Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[auth.HashToken(token)]
	if !ok || time.Since(e.at) > keyCacheMaxAge {
		return auth.Key{}, false
	}
	return e.key, true
}

// lookupKey finds a token's key in the store, or in the cache while the
// store is unreachable.
func (s *Server) lookupKey(ctx context.Context, token string) (auth.Key, error) {
	k, err := s.keys.Lookup(ctx, token)
	switch {
	case err == nil:
		s.keyCache.put(token, k)
	case queue.Unavailable(err):
		if ck, ok := s.keyCache.get(token); ok {
			return ck, nil
		}
	default:
		s.keyCache.drop(token)
	}
	return k, err
}

// allow spends one request of subject's rate: in the shared store, or in
// this process alone while the store is unreachable.
func (s *Server) allow(ctx context.Context, subject string, rate float64, burst int) (time.Duration, error) {
	wait, err := s.limiter.Allow(ctx, subject, rate, burst)
	if queue.Unavailable(err) {
		return s.localRates.Allow(ctx, subject, rate, burst)
	}
	return wait, err
}
