package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// runHealth is `studio health`: GET /healthz of the studio on this machine
// and exit 0 when it answers 200, else 1 — a container health check for
// an image without curl. It asks the API address (--addr, STUDIO_ADDR:
// serve), or with --admin the worker's admin address (--admin-addr,
// STUDIO_ADMIN_ADDR); with --any both, in that order, and one answering
// is enough (one image runs either subcommand). A wildcard host (":8080",
// "0.0.0.0:8080", "[::]:8080") is asked on 127.0.0.1.
func runHealth(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("studio health", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addrs := map[string]*string{}
	for _, o := range options() {
		if o.name != "addr" && o.name != "admin-addr" {
			continue
		}
		v := o.def
		if e, ok := lookup(getenv, o.env); ok {
			v = e
		}
		addrs[o.name] = fs.String(o.name, v, fmt.Sprintf("%s (env %s, default %q)", o.usage, o.env, o.def))
	}
	admin := fs.Bool("admin", false, "ask the worker's admin address (--admin-addr) instead of the API address")
	anyAddr := fs.Bool("any", false, "ask the API address, then the admin address: healthy when either answers 200 (the image's HEALTHCHECK)")
	timeout := fs.Duration("timeout", 2*time.Second, "time for each answer")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "usage: studio health [flags]: exit 0 when /healthz answers 200 on this machine, else 1")
			fs.PrintDefaults()
			return errHelp
		}
		return &usageError{err.Error() + " (see studio health -h)"}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q (see studio health -h)", fs.Arg(0))}
	}
	if *timeout <= 0 {
		return &usageError{fmt.Sprintf("invalid --timeout=%s: want a positive duration such as 2s", *timeout)}
	}
	names := []string{"addr"}
	switch {
	case *anyAddr:
		names = []string{"addr", "admin-addr"}
	case *admin:
		names = []string{"admin-addr"}
	}
	var urls []string
	for _, n := range names {
		u, err := healthURL(*addrs[n])
		if err != nil {
			return &usageError{fmt.Sprintf("invalid --%s=%q: %v", n, *addrs[n], err)}
		}
		urls = append(urls, u)
	}
	hc := &http.Client{
		Timeout: *timeout,
		// Never through a proxy of the environment: this machine only.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var fails []string
	for _, u := range urls {
		err := probeHealth(ctx, hc, u)
		if err == nil {
			fmt.Fprintf(stdout, "ok: %s\n", u)
			return nil
		}
		fails = append(fails, fmt.Sprintf("%s: %v", u, err))
	}
	return fmt.Errorf("unhealthy: %s", strings.Join(fails, "; "))
}

// healthURL is the /healthz URL of a listen address, on loopback when
// the address listens on every interface.
func healthURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !validPort(port) || port == "0" {
		return "", errors.New("want host:port, e.g. :8080 or 127.0.0.1:8080")
	}
	switch host {
	case "", "0.0.0.0", "::", "*":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

func probeHealth(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}
