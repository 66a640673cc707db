package kernels

import _ "embed"

// SHA256d is the OpenCL C source of the sha256d_search kernels. It must be
// built with -D VECSIZE=n, n in 1, 2, 4, 8, 16, and may be built with
// -D NVER=2|4 (the multi-version kernel) and -D MAJ_LOP3 (Maj's shape).
//
//go:embed sha256d.cl
var SHA256d string

// SHA256dEntry is the single-version kernel's name in SHA256d.
const SHA256dEntry = "sha256d_search"

// SHA256dMultiEntry is the multi-version kernel's name in SHA256d; it exists
// when the source is built with -D NVER=2 or 4.
const SHA256dMultiEntry = "sha256d_search_multi"
