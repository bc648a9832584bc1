//go:build tools

// Package tools pins the Pulumi engine modules this project builds its test
// engine from (make engine; see tools/pulumi-engine/build.sh). Nothing here is
// compiled into drctl.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
	_ "github.com/pulumi/pulumi/sdk/v3/go/common/version"
)
