//go:build !linux

package modelrunner

import "os/exec"

// dieWithNode does nothing outside Linux, which alone has a parent-death signal: there,
// the hosts of a node that was killed outright keep running until they are stopped.
func dieWithNode(*exec.Cmd) {}
