package kernels

import _ "embed"

// SHA256d is the OpenCL C source of the sha256d_search kernel. It must be
// built with -D VECSIZE=n, n in 1, 2, 4, 8, 16.
//
//go:embed sha256d.cl
var SHA256d string

// SHA256dEntry is the kernel function's name in SHA256d.
const SHA256dEntry = "sha256d_search"
