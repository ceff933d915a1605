#!/usr/bin/env node
// The `netstack` command: the compiled CLI in dist/ (built by `npm install` via `prepare`).
import '../dist/cli/main.js';
