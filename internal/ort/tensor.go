package ort

import (
	"fmt"

	onnx "github.com/yalue/onnxruntime_go"
)

// DType is a tensor element type the studio's graphs use.
type DType string

const (
	Float32 DType = "float32"
	Int64   DType = "int64"
	Bool    DType = "bool"
)

// Tensor is a dense tensor held in Go memory. Exactly one of the data
// slices is set, matching DType.
type Tensor struct {
	Shape []int64
	DType DType
	F32   []float32
	I64   []int64
	Bool  []bool
}

// F32Tensor makes a float32 tensor; data length must match the shape.
func F32Tensor(data []float32, shape ...int64) Tensor {
	return Tensor{Shape: shape, DType: Float32, F32: data}
}

// I64Tensor makes an int64 tensor; data length must match the shape.
func I64Tensor(data []int64, shape ...int64) Tensor {
	return Tensor{Shape: shape, DType: Int64, I64: data}
}

// BoolTensor makes a bool tensor; data length must match the shape.
func BoolTensor(data []bool, shape ...int64) Tensor {
	return Tensor{Shape: shape, DType: Bool, Bool: data}
}

// Len is the number of elements the shape holds.
func (t Tensor) Len() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

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
