module dr-platform/tools/provider-schema

go 1.23
