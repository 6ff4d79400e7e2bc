-- Neovim 0.7 headless: start `mllint server` for the current buffer with the README's setup
-- (vim.lsp.start_client + vim.lsp.buf_attach_client), wait for its diagnostics and print them,
-- one per line: "row:column: CODE message". MLLINT_COMMAND overrides the server command
-- (a JSON list); the default is the README's {"mllint", "server"}.
local command = os.getenv("MLLINT_COMMAND")
local cmd = command and vim.fn.json_decode(command) or { "mllint", "server" }

local client_id = vim.lsp.start_client({
  name = "mllint",
  cmd = cmd,
  root_dir = vim.fn.getcwd(),
})
vim.lsp.buf_attach_client(0, client_id)

local received = vim.wait(30000, function()
  return #vim.diagnostic.get(0) > 0
end, 50)

for _, diagnostic in ipairs(vim.diagnostic.get(0)) do
  local lsp_data = diagnostic.user_data and diagnostic.user_data.lsp or {}
  io.stdout:write(string.format(
    "%d:%d: %s %s\n",
    diagnostic.lnum + 1,
    diagnostic.col + 1,
    lsp_data.code or diagnostic.code or "?",
    (diagnostic.message:gsub("\n", " "))
  ))
end
if not received then
  io.stdout:write("no diagnostics received\n")
end
vim.lsp.stop_client(client_id)
vim.cmd("qall!")
