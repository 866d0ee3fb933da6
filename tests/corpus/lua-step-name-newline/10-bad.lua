recipe "x" {
  step "a\nb" { function() end },
}
