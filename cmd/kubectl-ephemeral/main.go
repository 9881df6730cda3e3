// Command kubectl-ephemeral is the kubectl plugin of ephemeral-agent's
// debug control: with the binary on PATH, `kubectl ephemeral ls` lists debug
// (ephemeral) containers, `kubectl ephemeral stop` asks the agent to stop
// one (debugapi.StopAnnotation) and `kubectl ephemeral policy` prints a
// node's debug policy as its agent serves it (GET /debugpolicy through the
// API server's node proxy). It takes kubectl's connection flags
// (--kubeconfig, --context, -n, ...) through k8s.io/cli-runtime.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	if err := newRootCommand(streams).ExecuteContext(ctx); err != nil {
		// cobra printed the error already.
		os.Exit(1)
	}
}

// options are what every subcommand shares: kubectl's connection flags and
// the streams to write to.
type options struct {
	flags   *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
}

// client returns a clientset for the cluster the flags name.
func (o *options) client() (kubernetes.Interface, error) {
	cfg, err := o.flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// namespace returns the namespace of -n, else the kubeconfig context's, and
// whether -n set it.
func (o *options) namespace() (string, bool, error) {
	return o.flags.ToRawKubeConfigLoader().Namespace()
}

func newRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{flags: genericclioptions.NewConfigFlags(true), streams: streams}
	cmd := &cobra.Command{
		Use:   "kubectl-ephemeral",
		Short: "List, stop and police debug (ephemeral) containers on ephemeral-agent nodes",
		Long: `kubectl ephemeral lists debug (ephemeral) containers, asks the node agent to
stop one, and prints the debug policy a node enforces.`,
		Annotations:  map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl ephemeral"},
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	// kubectl completes plugins through kubectl_complete-ephemeral, not
	// through a command of theirs.
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	o.flags.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(newLsCommand(o), newStopCommand(o), newPolicyCommand(o))
	return cmd
}
