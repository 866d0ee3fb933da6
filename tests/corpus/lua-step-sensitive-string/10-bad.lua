recipe "x" {
  step "a" { sensitive = "yes", function() end },
}
