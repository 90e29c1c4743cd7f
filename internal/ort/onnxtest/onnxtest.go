// Package onnxtest writes small ONNX graphs for tests, encoded by hand from
// the ONNX protobuf schema, so that tests need neither Python nor committed
// binaries to exercise the real ONNX Runtime.
package onnxtest

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// Element types of onnx.TensorProto.DataType.
const (
	Float = 1
	Int64 = 7
)

// Value declares a graph input or output. A negative dimension is dynamic
// and named by Params (e.g. "B").
type Value struct {
	Name   string
	Elem   int
	Dims   []int64
	Params []string // names of dynamic dims, used where Dims[i] < 0
}

// Node is one operator.
type Node struct {
	Op      string
	Inputs  []string
	Outputs []string
}

// Graph is a model with one graph.
type Graph struct {
	Name    string
	Opset   int64
	Nodes   []Node
	Inputs  []Value
	Outputs []Value
}

// Marshal encodes the graph as an onnx.ModelProto.
func (g Graph) Marshal() []byte {
	var graph []byte
	for _, n := range g.Nodes {
		graph = appendMsg(graph, 1, node(n))
	}
	graph = protowire.AppendTag(graph, 2, protowire.BytesType)
	graph = protowire.AppendString(graph, g.Name)
	for _, v := range g.Inputs {
		graph = appendMsg(graph, 11, valueInfo(v))
	}
	for _, v := range g.Outputs {
		graph = appendMsg(graph, 12, valueInfo(v))
	}

	opset := g.Opset
	if opset == 0 {
		opset = 17
	}
	var imp []byte
	imp = protowire.AppendTag(imp, 2, protowire.VarintType)
	imp = protowire.AppendVarint(imp, uint64(opset))

	var model []byte
	model = protowire.AppendTag(model, 1, protowire.VarintType) // ir_version
	model = protowire.AppendVarint(model, 8)
	model = protowire.AppendTag(model, 2, protowire.BytesType) // producer_name
	model = protowire.AppendString(model, "onnxtest")
	model = appendMsg(model, 7, graph)
	model = appendMsg(model, 8, imp)
	return model
}

// AddMul is a graph with float inputs x, y [B,N] and outputs sum = x+y and
// prod = x*y.
func AddMul(n int64) Graph {
	v := func(name string) Value {
		return Value{Name: name, Elem: Float, Dims: []int64{-1, n}, Params: []string{"B", ""}}
	}
	return Graph{
		Name: "add_mul",
		Nodes: []Node{
			{Op: "Add", Inputs: []string{"x", "y"}, Outputs: []string{"sum"}},
			{Op: "Mul", Inputs: []string{"x", "y"}, Outputs: []string{"prod"}},
		},
		Inputs:  []Value{v("x"), v("y")},
		Outputs: []Value{v("sum"), v("prod")},
	}
}

func node(n Node) []byte {
	var b []byte
	for _, in := range n.Inputs {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, in)
	}
	for _, out := range n.Outputs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, out)
	}
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	return protowire.AppendString(b, n.Op)
}

func valueInfo(v Value) []byte {
	var shape []byte
	for i, d := range v.Dims {
		var dim []byte
		if d >= 0 {
			dim = protowire.AppendTag(dim, 1, protowire.VarintType)
			dim = protowire.AppendVarint(dim, uint64(d))
		} else {
			dim = protowire.AppendTag(dim, 2, protowire.BytesType)
			dim = protowire.AppendString(dim, v.Params[i])
		}
		shape = appendMsg(shape, 1, dim)
	}
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, uint64(v.Elem))
	tensor = appendMsg(tensor, 2, shape)
	typ := appendMsg(nil, 1, tensor)

	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, v.Name)
	return appendMsg(b, 2, typ)
}

func appendMsg(b []byte, field protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}
