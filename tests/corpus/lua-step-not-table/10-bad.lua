recipe "x" {
  step "a" "not a table",
}
