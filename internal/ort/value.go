//go:build cgo

package ort

import (
	"fmt"

	onnx "github.com/yalue/onnxruntime_go"
)

func (t Tensor) value() (onnx.Value, error) {
	shape := onnx.NewShape(t.Shape...)
	switch t.DType {
	case Float32:
		if int64(len(t.F32)) != t.Len() {
			return nil, fmt.Errorf("%d values for shape %v", len(t.F32), t.Shape)
		}
		return onnx.NewTensor(shape, t.F32)
	case Int64:
		if int64(len(t.I64)) != t.Len() {
			return nil, fmt.Errorf("%d values for shape %v", len(t.I64), t.Shape)
		}
		return onnx.NewTensor(shape, t.I64)
	case Bool:
		if int64(len(t.Bool)) != t.Len() {
			return nil, fmt.Errorf("%d values for shape %v", len(t.Bool), t.Shape)
		}
		return onnx.NewTensor(shape, t.Bool)
	}
	return nil, fmt.Errorf("unsupported dtype %q", t.DType)
}

func fromValue(v onnx.Value) (Tensor, error) {
	shape := []int64(v.GetShape().Clone())
	switch x := v.(type) {
	case *onnx.Tensor[float32]:
		return Tensor{Shape: shape, DType: Float32, F32: append([]float32(nil), x.GetData()...)}, nil
	case *onnx.Tensor[int64]:
		return Tensor{Shape: shape, DType: Int64, I64: append([]int64(nil), x.GetData()...)}, nil
	case *onnx.Tensor[bool]:
		return Tensor{Shape: shape, DType: Bool, Bool: append([]bool(nil), x.GetData()...)}, nil
	}
	return Tensor{}, fmt.Errorf("unsupported output type %T", v)
}
