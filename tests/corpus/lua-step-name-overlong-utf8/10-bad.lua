recipe "x" {
  step "a\xc0\xafb" { function() end },
}
