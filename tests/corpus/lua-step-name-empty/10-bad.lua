recipe "x" {
  step "" { function() end },
}
