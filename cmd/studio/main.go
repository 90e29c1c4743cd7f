// Command studio is the fine-grained generation studio: the HTTP API and
// web studio (serve), the generation worker (worker), and tools.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: studio <command> [flags]

commands:
  serve     HTTP API and web studio; without --redis-url also runs a worker
            in the same process on the embedded queue
  worker    generation worker consuming jobs from Redis
  generate  make images from a prompt or class, without a server
  eval      grade a generator with the evaluation network on the real test split, each metric
            beside its real reference (--ladder: prove the metrics on degraded real images)
  dataset   make a filtered synthetic training set (ImageFolder, HF imagefolder, WebDataset), or verify one
  fewshot   few-shot accuracy on frozen classifier features, real vs real + synthetic images
  classify  measure a classifier on real images (top-1, top-5, calibration), cropped as in training
  health    exit 0 when this machine's studio answers /healthz (container health check)
  version   print the version

Run "studio <command> -h" for a command's flags.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "version":
		err = runVersion(stdout)
	case "serve", "worker":
		var cfg Config
		cfg, err = parseConfig(cmd, rest, getenv, stderr)
		if err != nil {
			break
		}
		log := newLogger(cfg, stderr)
		log.Info("starting studio "+cmd, append([]any{"version", version}, cfg.logAttrs()...)...)
		if cmd == "serve" {
			err = runServe(ctx, cfg, log)
		} else {
			err = runWorker(ctx, cfg, log)
		}
		if err != nil {
			log.Error("studio "+cmd+" stopped", "err", err)
			return 1
		}
		log.Info("studio " + cmd + " stopped cleanly")
		return 0
	case "generate":
		err = runGenerate(ctx, rest, getenv, stdout, stderr)
	case "eval":
		err = runEval(ctx, rest, getenv, stdout, stderr)
	case "dataset":
		err = runDataset(ctx, rest, getenv, stdout, stderr)
	case "fewshot":
		err = runFewshot(ctx, rest, getenv, stdout, stderr)
	case "classify":
		err = runClassify(ctx, rest, getenv, stdout, stderr)
	case "health":
		err = runHealth(ctx, rest, getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		err = &usageError{fmt.Sprintf("unknown command %q (want serve, worker, generate, eval, dataset, fewshot, classify, health or version)", cmd)}
	}
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "studio %s: %s\n", cmd, ue.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "studio %s: %v\n", cmd, err)
		return 1
	}
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
