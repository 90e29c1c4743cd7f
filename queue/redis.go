package queue

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Redis is the backend shared by API replicas and workers on many machines.
type Redis struct {
	c *redis.Client
}

// ParseRedisURL checks a redis:// or rediss:// URL without connecting.
func ParseRedisURL(url string) error {
	_, err := redis.ParseURL(url)
	return err
}

// OpenRedis connects to the server at url (redis://[user:pass@]host:port/db)
// and checks that it answers.
func OpenRedis(ctx context.Context, url string) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	r := &Redis{c: redis.NewClient(opts)}
	if err := r.Ping(ctx); err != nil {
		r.c.Close()
		return nil, err
	}
	return r, nil
}

// Ping checks that the server answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (r *Redis) Close() error { return r.c.Close() }
