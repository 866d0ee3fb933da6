recipe "x" {
  step "a" { wehn = "boot", function() end },
}
