// Command bench is the tool behind `make bench` (scripts/bench.sh): it
// gathers what the benchmark runs measured and writes BENCHMARKS.md and
// BENCHMARKS.json.
//
//	go run ./test/bench report -dir RESULTS -out BENCHMARKS
//
// RESULTS holds, for rounds 1..R, go-<r>.txt (output of the generator
// package's BenchmarkGraph and BenchmarkGenerate, -count 1) and
// torch-<r>.json (python3 -m fgtrain bench --repeats 1), and load.txt
// (lines "<phase> <loadavg 1m> <5m> <15m>"). Interleaving the rounds of
// the two sides puts them under the same load on a shared machine, and a
// ratio is taken per round, so slow drifts in the load cancel out.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "report":
		err = runReport(os.Args[2:])
	case "live":
		err = runLive(os.Args[2:])
	case "pressure":
		err = runPressure(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: bench report -dir RESULTS -out BENCHMARKS\n       bench live -dir RESULTS -studio BIN [flags]\n       bench pressure -dir RESULTS -studio BIN [-out BENCHMARKS] [flags]")
	os.Exit(2)
}
