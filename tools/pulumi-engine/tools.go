//go:build tools

// Package tools pins the Pulumi engine modules this project builds its test
// engine from (see README: make engine). Nothing here is compiled into drctl.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
