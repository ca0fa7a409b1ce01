//go:build !linux

package lambdart

import "errors"

// peakRSS is only available on Linux, where /proc exposes VmHWM.
func peakRSS(int) (int64, error) {
	return 0, errors.New("lambdart: peak rss needs /proc, run on linux")
}
