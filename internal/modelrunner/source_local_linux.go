package modelrunner

import (
	"os/exec"
	"syscall"
)

// dieWithNode has the kernel kill a model host when the node that started it dies,
// however it dies. After a SIGKILL, an OOM kill or a crash the node cannot stop its hosts
// itself, and an orphaned host would keep its port, memory and CPU until someone found
// it. The signal is tied to the thread that started the host; Go keeps its threads for
// the life of the process unless a goroutine exits while locked to one, which nothing in
// this program does.
func dieWithNode(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
