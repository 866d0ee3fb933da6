recipe "x" {
  step "a" { when = "once" },
}
