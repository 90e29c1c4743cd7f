package ort

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
