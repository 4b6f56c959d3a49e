//go:build amd64 && !purego

package llama

import "github.com/peerllm/peerllm/internal/engine/gguf"

// attnSIMD selects the AVX2 attention kernels (attn_amd64.s) where package
// gguf found AVX2. They give exactly the scalar loop's bits.
var attnSIMD = gguf.SIMD() == "avx2"

//go:noescape
func attnScoresAVX2(q *float32, keys *float32, stride, hd, n int, scale float32, att *float32)

//go:noescape
func attnValuesAVX2(att *float32, n int, vals *float32, stride, hd int, out *float32)

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func divAVX2(x *float32, n int, d float32)

//go:noescape
func expAVX2(x *float32, n int, sub float32)
