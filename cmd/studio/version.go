package main

import (
	"fmt"
	"io"
	"runtime"
)

// ortVersion is the ONNX Runtime release the binary is built and tested
// against (the C API of github.com/yalue/onnxruntime_go v1.27.0).
const ortVersion = "1.24.3"

func runVersion(w io.Writer) error {
	_, err := fmt.Fprintf(w, "studio %s (%s, %s/%s, onnxruntime %s)\n",
		version, runtime.Version(), runtime.GOOS, runtime.GOARCH, ortVersion)
	return err
}
