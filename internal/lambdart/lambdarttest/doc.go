// Package lambdarttest is the test support the test packages of the bundle
// share: it builds function packages once per test binary run (with the
// flags of the Makefile's build) and starts them under package lambdart,
// closed when the test ends; Buffer collects output written concurrently;
// Secrets checks output for values that must never appear in it.
//
//	func TestMain(m *testing.M) { os.Exit(lambdarttest.Main(m)) }
//
//	func TestGet(t *testing.T) {
//		out := &lambdarttest.Buffer{}
//		rt := lambdarttest.Start(t, lambdart.Function{
//			Path:   lambdarttest.Bootstrap(t, "github.com/.../functions/get-media"),
//			Env:    []string{"NXCLOUD_SECRET_ID=..."},
//			Stdout: out, Stderr: out,
//		})
//		res, err := rt.Invoke(t.Context(), event)
//		...
//	}
package lambdarttest
