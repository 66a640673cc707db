package option

// number is what an option with a default can be: a count, a size, a
// duration, a rate.
type number interface {
	~int | ~int32 | ~int64 | ~uint32 | ~uint64 | ~float64
}

// Default sets *p to def when it is unset: zero, or negative, which no
// timeout, interval or bound means.
func Default[T number](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}
