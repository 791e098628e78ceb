module local.jangar.dev/pause

go 1.22
