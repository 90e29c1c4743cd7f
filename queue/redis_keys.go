package queue

import (
	"fmt"
	"strconv"
	"strings"
)

// keys builds every Redis key name. All keys start with one prefix that
// holds a {hash tag}, so Redis Cluster keeps them in one slot and the Lua
// scripts may touch any of them. The Lua helpers in redis_scripts.go build
// the same names from the same prefix (ARGV[1]); change both together.
//
//	<p>job:<id>             hash   the job (fields: see jobFields)
//	<p>job:<id>:res         hash   results: d:<index> → PNG bytes, m:<index> → meta JSON,
//	                               p:<index>:<k> → part k (from 1), each read alone
//	<p>job:<id>:ev          stream progress events of one job (MAXLEN ~1000)
//	<p>idem:<n>:<client>:<key> string idempotency key → job id (n = len(client))
//	<p>cq:<lane>:<client>   list   the client's queued job ids in a lane, FIFO
//	<p>rr:<lane>            list   clients with queued jobs in a lane, round-robin order
//	<p>waiting:<lane>       zset   queued job ids (incl. backoff) by creation ms: depth, oldest age, bound
//	<p>delayed              zset   job ids waiting out a retry backoff, by due ms
//	<p>lane:<lane>          stream running jobs (one entry per delivery); consumer group "workers"
//	<p>done:<state>         zset   finished job ids by finish ms (trimmed at ResultTTL), for Stats
//	<p>dead                 stream dead letters: job, client, lane, model, attempts, error
//	<p>wake                 list   wake-up tokens for blocked Claim calls (capped)
//	<p>gc                   string set for ConsumerIdle after Claim removed idle consumers
//
// Finished jobs' job, res, ev and idem keys expire ResultTTL after they finish.
type keys struct{ p string }

// newKeys checks that the prefix carries a non-empty hash tag.
func newKeys(prefix string) (keys, error) {
	open := strings.IndexByte(prefix, '{')
	if open < 0 {
		return keys{}, fmt.Errorf("redis key prefix %q: no {hash tag}", prefix)
	}
	if end := strings.IndexByte(prefix[open:], '}'); end < 2 {
		return keys{}, fmt.Errorf("redis key prefix %q: empty or unclosed {hash tag}", prefix)
	}
	return keys{p: prefix}, nil
}

func (k keys) job(id string) string     { return k.p + "job:" + id }
func (k keys) results(id string) string { return k.p + "job:" + id + ":res" }
func (k keys) events(id string) string  { return k.p + "job:" + id + ":ev" }
func (k keys) stream(l Lane) string     { return k.p + "lane:" + string(l) }
func (k keys) waiting(l Lane) string    { return k.p + "waiting:" + string(l) }
func (k keys) finished(s State) string  { return k.p + "done:" + string(s) }
func (k keys) delayed() string          { return k.p + "delayed" }
func (k keys) dead() string             { return k.p + "dead" }
func (k keys) wake() string             { return k.p + "wake" }
func (k keys) roundRobin(l Lane) string { return k.p + "rr:" + string(l) }
func (k keys) clientQueue(l Lane, client string) string {
	return k.p + "cq:" + string(l) + ":" + client
}

// idempotency is length-prefixed so that client "a:b" with key "c" and
// client "a" with key "b:c" never share a key.
func (k keys) idempotency(client, key string) string {
	return k.p + "idem:" + strconv.Itoa(len(client)) + ":" + client + ":" + key
}
