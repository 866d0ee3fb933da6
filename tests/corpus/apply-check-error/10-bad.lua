recipe "x" {
  step "a" { check = function() error("check broke") end, function() end },
}
