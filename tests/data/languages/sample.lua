--- Penlight's list utilities.
-- @module pl.List
local List = {
  __tostring = function(self) return 'List' end,
}

--- Create a list from a table.
-- @param t a table
function List.new(t)
  return setmetatable(t or {}, List)
end

-- Append one value.
function List:append(value)
  local function check(v)
    return v ~= nil
  end
  if check(value) then
    self[#self + 1] = value
  end
  return self
end

local function private_helper(x)
  return x
end

-- The number of values.
List.len = function(self)
  return #self
end

return List
