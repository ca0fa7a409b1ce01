package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
)

// binDir holds the binary the tests build.
var binDir string

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "local-test-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := lambdarttest.Main(m)
	_ = os.RemoveAll(binDir)
	os.Exit(code)
}

// run is a local run under test: its root process (make or the binary),
// what it printed, the processes it started and their folders.
type localRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *lambdarttest.Buffer
	pipe   io.ReadCloser // the read end of its output, when it writes to a pipe
	tmp    string        // its TMPDIR
	port   int
	tree   []int    // the root's descendants once ready
	minio  string   // MinIO's data folder
	usage  []string // the hints it printed
	waited chan error
}

// freePort returns a free loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRun starts the local run, through make when viaMake, with its
// output on a pipe when piped, and waits until it printed its hints.
func startRun(t *testing.T, viaMake, piped bool, args ...string) *localRun {
	t.Helper()
	if _, err := miniotest.FindBinary(); err != nil {
		t.Fatal(err)
	}
	root, err := localstack.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	r := &localRun{t: t, out: &lambdarttest.Buffer{}, tmp: t.TempDir(), port: freePort(t), waited: make(chan error, 1)}
	args = append([]string{"-addr", fmt.Sprintf("127.0.0.1:%d", r.port)}, args...)
	if viaMake {
		bin := t.TempDir()
		r.cmd = exec.Command("make", "--no-print-directory", "local", "BIN_DIR="+bin, "LOCAL_ARGS="+strings.Join(args, " "))
	} else {
		r.cmd = exec.Command(binary(t), args...)
	}
	r.cmd.Dir = root
	r.cmd.Env = append(os.Environ(), "TMPDIR="+r.tmp)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a process group of its own, as a shell's job
	if piped {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.cmd.Stdout, r.cmd.Stderr, r.pipe = pw, pw, pr
		go func() { _, _ = io.Copy(r.out, pr) }()
		defer pw.Close()
	} else {
		r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.waited <- r.cmd.Wait() }()
	t.Cleanup(func() { // whatever happens, nothing is left running
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		for _, pid := range r.tree {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	for end := time.Now().Add(3 * time.Minute); !strings.Contains(r.out.String(), "Ctrl-C stops everything."); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-r.waited:
			t.Fatalf("the local run ended before it was ready (%v):\n%s", err, r.out)
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("the local run is not ready after 3 minutes:\n%s", r.out)
		}
	}
	r.tree = descendants(r.cmd.Process.Pid)
	for _, pid := range r.tree {
		if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); bytes.Contains(cmdline, []byte("minio\x00server")) {
			parts := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
			r.minio = string(parts[len(parts)-1])
		}
	}
	if len(r.tree) < 1+len(localstack.Functions) || r.minio == "" {
		t.Fatalf("processes of the run: %v (MinIO's folder %q): want MinIO and every function", r.tree, r.minio)
	}
	r.usage = hints(r.out.String())
	return r
}

var buildOnce = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(binDir, "local")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

// binary is cmd/local, built once.
func binary(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// descendants lists the processes under pid (Linux /proc).
func descendants(pid int) []int {
	children := map[int][]int{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so parse after ")".
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 {
			ppid, _ := strconv.Atoi(fields[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// alive reports whether pid runs (a zombie is dead).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !bytes.Contains(stat[bytes.LastIndexByte(stat, ')'):], []byte(") Z "))
}

// checkStopped waits for the run to end and checks that nothing of it is
// left: no process, no folder, the HTTP API's port free.
func (r *localRun) checkStopped(how string) {
	r.t.Helper()
	select {
	case err := <-r.waited:
		r.t.Logf("%s: the run ended: %v", how, err)
	case <-time.After(30 * time.Second):
		r.t.Fatalf("%s: the run did not stop in 30s:\n%s", how, r.out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range r.tree {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			r.t.Errorf("%s: process %d (%s) still runs", how, pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
	if _, err := os.Stat(r.minio); !os.IsNotExist(err) {
		r.t.Errorf("%s: MinIO's folder %s is still there", how, r.minio)
	}
	if left, _ := filepath.Glob(filepath.Join(r.tmp, "nxcloud-local-*")); len(left) > 0 {
		r.t.Errorf("%s: folders left behind: %v", how, left)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
	if err != nil {
		r.t.Errorf("%s: the HTTP API's port is still taken: %v", how, err)
	} else {
		_ = l.Close()
	}
	if r.pipe == nil && !strings.Contains(r.out.String(), "local: shutting down") { // a closed pipe shows nothing
		r.t.Errorf("%s: the run did not shut down by itself:\n%s", how, tail(r.out.String()))
	}
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// TestStop stops local runs in every usual way: Ctrl-C in the terminal of
// make local (SIGINT to its process group), kill of make (SIGTERM, and
// SIGKILL) and the reader of the output going away (make local | head).
// Each leaves no process, no folder and its port free.
func TestStop(t *testing.T) {
	t.Parallel()
	t.Run("Ctrl-C on make local", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, true, false)
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT)
		r.checkStopped("Ctrl-C")
	})
	t.Run("kill make", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, true, false)
		_ = syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM) // make alone, not its children
		r.checkStopped("SIGTERM to make")
	})
	t.Run("kill -9 make", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, true, false)
		_ = syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL)
		r.checkStopped("SIGKILL to make")
	})
	t.Run("output closed", func(t *testing.T) {
		t.Parallel()
		// The sweep's summary every second is the write that finds the pipe closed.
		r := startRun(t, false, true, "-reconcile-every=1s")
		_ = r.pipe.Close()
		r.checkStopped("closed pipe")
	})
}

// hints returns the command lines a run printed: its indented lines that
// are not comments, up to the sam local invoke part.
func hints(out string) []string {
	var lines []string
	in := false
	for s := bufio.NewScanner(strings.NewReader(out)); s.Scan(); {
		l := s.Text()
		switch {
		case strings.HasPrefix(l, "The bundle runs locally."):
			in = true
		case strings.Contains(l, "sam local invoke in Docker"), strings.HasPrefix(l, "Ctrl-C stops everything."):
			in = false
		case in && strings.HasPrefix(l, "  ") && !strings.HasPrefix(strings.TrimSpace(l), "#") && strings.TrimSpace(l) != "":
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return lines
}

// TestHints pastes the commands a run prints into bash, as they are, and
// checks what each part answers: the media id read from the tags, the
// media, its content and its deletion; the upload session with its PUT; the
// placeholder secret refused with the put-secret-value fix, then the
// credentials rotated back; the sweep invoked through Lambda's Invoke API;
// the failure queue. The -h flag exits 0 and -reconcile-every=0 says the
// sweep runs only when invoked.
func TestHints(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "aws", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the printed hints need it", tool)
		}
	}
	help := exec.Command(binary(t), "-h")
	if out, err := help.CombinedOutput(); err != nil || !strings.Contains(string(out), "usage: local") {
		t.Errorf("local -h: %v, %s; want the usage and exit status 0", err, out)
	}
	r := startRun(t, false, false, "-secret-ttl=1s", "-reconcile-every=0")
	if !strings.Contains(r.out.String(), "runs only when invoked (-reconcile-every=0)") || strings.Contains(r.out.String(), "every 0s") {
		t.Errorf("with -reconcile-every=0 the hints say:\n%s", r.out)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "menu.pdf"), []byte("%PDF-1.4 hints "+strconv.Itoa(r.port)+"\n%%EOF\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "photo.jpg"), []byte("\xff\xd8\xff\xe0 hints photo \xff\xd9"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "set -euo pipefail\n" + strings.Join(r.usage, "\necho '---'\n") + "\n"
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the hints, pasted into bash, failed: %v\n%s\n--- the hints:\n%s", err, out, script)
	}
	parts := strings.Split(string(out), "---\n")
	if len(parts) != len(r.usage) {
		t.Fatalf("%d outputs for %d commands:\n%s", len(parts), len(r.usage), out)
	}
	has := func(subs ...string) func(string) bool {
		return func(c string) bool {
			for _, s := range subs {
				if !strings.Contains(c, s) {
					return false
				}
			}
			return true
		}
	}
	for _, want := range []struct {
		name    string
		command func(string) bool
		answer  string
	}{
		{"the media id from the tags", has("get-object-tagging", "menu.pdf"), "media id: 4:"},
		{"the photo's media id from the tags", has("get-object-tagging", "photo.jpg"), "-"}, // a UUID, uploadMedia's ids
		{"the media", func(c string) bool { return strings.HasPrefix(c, `curl -s "`) && strings.Contains(c, "/media/$MEDIA?") }, `"mime_type":"application/pdf"`},
		{"its deletion", has("-X DELETE"), `"success":true`},
		{"the session's status", has("/uploads/$(jq"), `"status":"uploaded"`},
		{"the placeholder refused", has("sleep 1; curl"), "put-secret-value"},
		{"the sweep", has("lambda invoke"), `"examined"`},
		{"the failure queue", has("failure-queue"), "["},
	} {
		i := slices.IndexFunc(r.usage, want.command)
		switch {
		case i < 0:
			t.Errorf("%s: no printed command:\n%s", want.name, strings.Join(r.usage, "\n"))
		case !strings.Contains(parts[i], want.answer):
			t.Errorf("%s: %s\nanswered %q, want %q in it", want.name, r.usage[i], parts[i], want.answer)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "menu-back.pdf")); err != nil || !strings.Contains(string(b), strconv.Itoa(r.port)) {
		t.Errorf("menu-back.pdf = %q, %v: want the file uploaded, through the content redirect", b, err)
	}
	_ = syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM)
	r.checkStopped("SIGTERM to the binary")
}
