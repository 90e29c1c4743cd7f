//go:build cgo

package ort

import (
	"fmt"

	onnx "github.com/yalue/onnxruntime_go"
)

// Inspect reads the inputs and outputs of the graph at path without
// creating a long-lived session.
func (r *Runtime) Inspect(path string) (inputs, outputs []TensorInfo, err error) {
	in, out, err := onnx.GetInputOutputInfo(path)
	if err != nil {
		return nil, nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	return infos(in), infos(out), nil
}

func infos(xs []onnx.InputOutputInfo) []TensorInfo {
	res := make([]TensorInfo, len(xs))
	for i, x := range xs {
		res[i] = TensorInfo{Name: x.Name, DType: dtypeName(x.DataType), Shape: []int64(x.Dimensions.Clone())}
	}
	return res
}

func dtypeName(t onnx.TensorElementDataType) string {
	switch t {
	case onnx.TensorElementDataTypeFloat:
		return string(Float32)
	case onnx.TensorElementDataTypeInt64:
		return string(Int64)
	case onnx.TensorElementDataTypeBool:
		return string(Bool)
	}
	return t.String()
}
