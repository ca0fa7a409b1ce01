package bench

import (
	"math"
	"slices"
)

// Summary is the distribution of repeated measurements of one quantity.
type Summary struct {
	N                int
	Min, P10, Median float64
	P90, Max, Mean   float64
}

// Summarize returns the summary of xs (which it does not modify); the
// percentiles interpolate linearly between the closest ranks. An empty xs
// gives the zero Summary.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	return Summary{
		N: len(s), Min: s[0], Max: s[len(s)-1], Mean: sum / float64(len(s)),
		P10: Percentile(s, 10), Median: Percentile(s, 50), P90: Percentile(s, 90),
	}
}

// Percentile returns the p-th percentile (0 to 100) of the sorted slice s,
// interpolating linearly between the closest ranks; NaN when s is empty.
func Percentile(s []float64, p float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	p = math.Max(0, math.Min(100, p))
	rank := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	return s[lo] + (s[hi]-s[lo])*(rank-float64(lo))
}
