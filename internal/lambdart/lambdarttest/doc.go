// Package lambdarttest helps tests drive real function binaries with
// package lambdart: it builds a function package once per test binary run,
// with the flags of the Makefile's host build, and starts it in a Runtime
// that is closed when the test ends.
//
//	func TestMain(m *testing.M) { os.Exit(lambdarttest.Main(m)) }
//
//	func TestGet(t *testing.T) {
//		rt := lambdarttest.Start(t, lambdart.Function{
//			Name: "get",
//			Path: lambdarttest.Bootstrap(t, "github.com/.../functions/get"),
//			Env:  []string{"NXCLOUD_SECRET_ID=..."},
//		})
//		res, err := rt.Invoke(t.Context(), event)
//		...
//	}
package lambdarttest
